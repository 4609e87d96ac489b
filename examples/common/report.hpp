// Example support (not part of the library): command-line flags, a per-epoch progress line
// (a live bar on a terminal, plain lines otherwise) and CSV files.
#ifndef REGULA_EXAMPLES_COMMON_REPORT_HPP
#define REGULA_EXAMPLES_COMMON_REPORT_HPP

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace ex {

/// `--name value` and `--flag` arguments. Unknown names are an error (listed with `usage`).
class Args {
 public:
  Args(int argc, char** argv, std::string usage);
  std::string str(const std::string& name, const std::string& fallback);
  double num(const std::string& name, double fallback);
  long integer(const std::string& name, long fallback);
  bool flag(const std::string& name);
  /// Exits with the usage text if an argument was given that nobody asked for.
  void finish() const;
  [[nodiscard]] bool has(const std::string& name) const { return values_.count(name) != 0; }

 private:
  std::map<std::string, std::string> values_;
  mutable std::map<std::string, bool> used_;
  std::string usage_;
};

/// Progress of a training run: `tick` during an epoch redraws a bar when stdout is a terminal
/// (at most ten times a second); `epoch` prints one line per epoch.
class Progress {
 public:
  Progress(std::string label, long epochs);
  void tick(long epoch, std::size_t step, std::size_t steps, double running_loss);
  /// One line: label, epoch, loss, train and test accuracy, elapsed, and `extra`.
  void epoch(long epoch, double loss, double train_acc, double test_acc,
             const std::string& extra = "");
  [[nodiscard]] double elapsed() const;

 private:
  std::string label_;
  long epochs_;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

/// A CSV file with a header row; every value row is written and flushed at once.
class Csv {
 public:
  Csv() = default;
  Csv(const std::string& path, const std::vector<std::string>& header);
  Csv(const Csv&) = delete;
  Csv& operator=(const Csv&) = delete;
  Csv(Csv&& o) noexcept : f_(o.f_) { o.f_ = nullptr; }
  Csv& operator=(Csv&& o) noexcept;
  ~Csv();
  void row(const std::vector<double>& values);

 private:
  std::FILE* f_ = nullptr;
};

/// Sets the number of threads of Eigen's products and of OpenMP loops (regula's kernels).
void set_threads(int n);

/// Creates directory `dir` (and its parents) if needed.
void make_dirs(const std::string& dir);

/// Mean and sample standard deviation (n − 1 in the denominator; sd 0 for one value).
struct Stat {
  double mean = 0.0, sd = 0.0;
};
Stat stat(const std::vector<double>& v);

/// "1,2,3" → {1, 2, 3}; empty if any item is not an integer.
std::vector<long> parse_integers(const std::string& list);

/// printf into a std::string.
std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace ex

#endif  // REGULA_EXAMPLES_COMMON_REPORT_HPP
