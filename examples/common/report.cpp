#include "common/report.hpp"

#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdlib>
#include <sstream>
#include <stdexcept>

#include <Eigen/Core>

#include <sys/stat.h>
#include <unistd.h>
#if defined(_OPENMP)
#include <omp.h>
#endif

namespace ex {

Args::Args(int argc, char** argv, std::string usage) : usage_(std::move(usage)) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::printf("%s", usage_.c_str());
      std::exit(0);
    }
    if (a.rfind("--", 0) != 0) {
      std::fprintf(stderr, "unexpected argument '%s'\n%s", a.c_str(), usage_.c_str());
      std::exit(2);
    }
    a = a.substr(2);
    const auto eq = a.find('=');
    if (eq != std::string::npos) {
      values_[a.substr(0, eq)] = a.substr(eq + 1);
    } else if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) {
      values_[a] = argv[++i];
    } else {
      values_[a] = "";
    }
  }
}

std::string Args::str(const std::string& name, const std::string& fallback) {
  used_[name] = true;
  const auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

double Args::num(const std::string& name, double fallback) {
  const std::string s = str(name, "");
  if (s.empty()) return fallback;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || *end != '\0') {
    std::fprintf(stderr, "--%s expects a number, got '%s'\n", name.c_str(), s.c_str());
    std::exit(2);
  }
  return v;
}

long Args::integer(const std::string& name, long fallback) {
  const double v = num(name, static_cast<double>(fallback));
  return static_cast<long>(v);
}

bool Args::flag(const std::string& name) {
  used_[name] = true;
  return values_.count(name) != 0;
}

void Args::finish() const {
  for (const auto& kv : values_) {
    if (used_.count(kv.first) == 0) {
      std::fprintf(stderr, "unknown option --%s\n%s", kv.first.c_str(), usage_.c_str());
      std::exit(2);
    }
  }
}

Progress::Progress(std::string label, long epochs)
    : label_(std::move(label)),
      epochs_(epochs),
      tty_(isatty(fileno(stdout)) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

double Progress::elapsed() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::tick(long epoch, std::size_t step, std::size_t steps, double running_loss) {
  if (!tty_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(100) && step + 1 != steps) return;
  last_draw_ = now;
  constexpr int width = 24;
  const int done =
      steps == 0 ? width
                 : static_cast<int>(static_cast<double>(width) * static_cast<double>(step + 1) /
                                    static_cast<double>(steps));
  std::string bar(static_cast<std::size_t>(done), '#');
  bar.resize(width, '.');
  std::printf("\r  %-22s epoch %3ld/%-3ld [%s] loss %.4f  %6.1fs ", label_.c_str(), epoch, epochs_,
              bar.c_str(), running_loss, elapsed());
  std::fflush(stdout);
}

void Progress::epoch(long epoch, double loss, double train_acc, double test_acc,
                     const std::string& extra) {
  if (tty_) std::printf("\r\033[K");
  // A NaN accuracy means "not measured" (e.g. the distillation students' training accuracy).
  const std::string train =
      std::isnan(train_acc) ? std::string("train -  ") : format("train %.2f%%", 100.0 * train_acc);
  std::printf("  %-22s epoch %3ld/%-3ld loss %.4f  %s  test %.2f%%  %6.1fs%s%s\n", label_.c_str(),
              epoch, epochs_, loss, train.c_str(), 100.0 * test_acc, elapsed(),
              extra.empty() ? "" : "  ", extra.c_str());
  std::fflush(stdout);
}

Csv::Csv(const std::string& path, const std::vector<std::string>& header) {
  f_ = std::fopen(path.c_str(), "w");
  if (f_ == nullptr) throw std::runtime_error("cannot write " + path);
  for (std::size_t i = 0; i < header.size(); ++i)
    std::fprintf(f_, "%s%s", i ? "," : "", header[i].c_str());
  std::fprintf(f_, "\n");
  std::fflush(f_);
}

Csv& Csv::operator=(Csv&& o) noexcept {
  if (this != &o) {
    if (f_ != nullptr) std::fclose(f_);
    f_ = o.f_;
    o.f_ = nullptr;
  }
  return *this;
}

Csv::~Csv() {
  if (f_ != nullptr) std::fclose(f_);
}

void Csv::row(const std::vector<double>& values) {
  if (f_ == nullptr) return;
  for (std::size_t i = 0; i < values.size(); ++i)
    std::fprintf(f_, "%s%.6g", i ? "," : "", values[i]);
  std::fprintf(f_, "\n");
  std::fflush(f_);
}

void set_threads(int n) {
  n = n < 1 ? 1 : n;
  Eigen::setNbThreads(n);
#if defined(_OPENMP)
  omp_set_num_threads(n);
#endif
}

void make_dirs(const std::string& dir) {
  std::string partial;
  for (std::size_t i = 0; i <= dir.size(); ++i) {
    if (i == dir.size() || dir[i] == '/') {
      if (!partial.empty() && ::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) {
        throw std::runtime_error("cannot create directory " + partial);
      }
    }
    if (i < dir.size()) partial += dir[i];
  }
}

std::string format(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

Stat stat(const std::vector<double>& v) {
  Stat s;
  if (v.empty()) return s;
  for (const double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  for (const double x : v) s.sd += (x - s.mean) * (x - s.mean);
  s.sd = v.size() > 1 ? std::sqrt(s.sd / static_cast<double>(v.size() - 1)) : 0.0;
  return s;
}

std::vector<long> parse_integers(const std::string& list) {
  std::vector<long> out;
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) {
    std::size_t used = 0;
    long s = 0;
    try {
      s = std::stol(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size()) return {};
    out.push_back(s);
  }
  return out;
}

}  // namespace ex
