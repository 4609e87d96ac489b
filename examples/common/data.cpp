#include "common/data.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include <regula/core/stream.hpp>
#include <sys/stat.h>
#include <zlib.h>

namespace ex {
namespace {

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

const char* const kFiles[4] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};

void read_exact(gzFile f, void* dst, std::size_t n, const std::string& path) {
  auto* p = static_cast<unsigned char*>(dst);
  while (n > 0) {
    const unsigned chunk = n > (1U << 30) ? (1U << 30) : static_cast<unsigned>(n);
    const int got = gzread(f, p, chunk);
    if (got <= 0) throw std::runtime_error("read_idx: " + path + " is truncated");
    p += got;
    n -= static_cast<std::size_t>(got);
  }
}

Dataset to_dataset(const IdxArray& images, const IdxArray& labels) {
  if (images.dims.empty() || labels.dims.size() != 1 || labels.dims[0] != images.dims[0]) {
    throw std::runtime_error("load_fashion_mnist: images and labels do not match");
  }
  const auto n = static_cast<Index>(images.dims[0]);
  Index features = 1;
  for (std::size_t i = 1; i < images.dims.size(); ++i)
    features *= static_cast<Index>(images.dims[i]);
  Dataset d;
  d.classes = 10;
  d.x.resize(features, n);
  const float mean = 0.2860F, inv_std = 1.0F / 0.3530F;
  for (Index j = 0; j < n; ++j) {
    for (Index i = 0; i < features; ++i) {
      const float v =
          static_cast<float>(images.data[static_cast<std::size_t>(j * features + i)]) / 255.0F;
      d.x(i, j) = (v - mean) * inv_std;
    }
  }
  d.y.assign(labels.data.begin(), labels.data.end());
  return d;
}

}  // namespace

IdxArray read_idx(const std::string& path, std::size_t max_items) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) throw std::runtime_error("read_idx: cannot open " + path);
  IdxArray a;
  try {
    unsigned char magic[4];
    read_exact(f, magic, 4, path);
    if (magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08 || magic[3] == 0 || magic[3] > 4) {
      throw std::runtime_error("read_idx: " + path + " is not an unsigned-byte IDX file");
    }
    std::size_t items = 1;
    for (unsigned i = 0; i < magic[3]; ++i) {
      unsigned char b[4];
      read_exact(f, b, 4, path);
      const std::uint32_t dim = (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) |
                                (std::uint32_t{b[2]} << 8) | std::uint32_t{b[3]};
      if (i == 0 && max_items != 0 && dim > max_items) {
        a.dims.push_back(static_cast<std::uint32_t>(max_items));
      } else {
        a.dims.push_back(dim);
      }
      items *= a.dims.back();
    }
    a.data.resize(items);
    read_exact(f, a.data.data(), items, path);
  } catch (...) {
    gzclose(f);
    throw;
  }
  gzclose(f);
  return a;
}

std::string find_fashion_mnist(const std::string& dir) {
  // An explicit directory (flag, else environment) is the only place looked at.
  std::string c = dir;
  if (c.empty()) {
    const char* env = std::getenv("REGULA_FASHION_MNIST_DIR");
    c = env != nullptr && *env != '\0' ? env : "/usr/share/datasets/fashion-mnist";
  }
  for (const char* name : kFiles) {
    if (!file_exists(c + "/" + name)) return "";
  }
  return c;
}

TrainTest load_fashion_mnist(const std::string& dir, std::size_t max_train, std::size_t max_test,
                             std::size_t synthetic_train, std::size_t synthetic_test,
                             std::uint64_t seed) {
  TrainTest tt;
  const std::string found = find_fashion_mnist(dir);
  if (found.empty()) {
    std::fprintf(stderr,
                 "Fashion-MNIST not found in %s (the four *-ubyte.gz files).\n"
                 "  Get it on Debian/Ubuntu with:  sudo apt-get install dataset-fashion-mnist\n"
                 "  or download the four *-ubyte.gz files from "
                 "https://github.com/zalandoresearch/fashion-mnist and pass --data DIR.\n"
                 "Falling back to a small synthetic 10-class task: the numbers below are NOT "
                 "Fashion-MNIST results.\n",
                 !dir.empty() ? dir.c_str()
                 : std::getenv("REGULA_FASHION_MNIST_DIR") != nullptr
                     ? "$REGULA_FASHION_MNIST_DIR"
                     : "/usr/share/datasets/fashion-mnist");
    tt.synthetic = true;
    tt.source = "synthetic";
    tt.train = synthetic_task(
        max_train != 0 && max_train < synthetic_train ? max_train : synthetic_train, seed, 0);
    tt.test = synthetic_task(max_test != 0 && max_test < synthetic_test ? max_test : synthetic_test,
                             seed, 1);
    return tt;
  }
  tt.source = found;
  tt.train = to_dataset(read_idx(found + "/" + kFiles[0], max_train),
                        read_idx(found + "/" + kFiles[1], max_train));
  tt.test = to_dataset(read_idx(found + "/" + kFiles[2], max_test),
                       read_idx(found + "/" + kFiles[3], max_test));
  return tt;
}

Dataset synthetic_task(std::size_t n, std::uint64_t seed, std::uint64_t subsequence) {
  constexpr Index features = 784, classes = 10, blobs = 3;
  // Prototypes depend on the seed only, so train and test share them.
  regula::Stream proto_stream(seed, 1000);
  Mat protos(features, classes * blobs);
  proto_stream.normal(protos.data(), static_cast<std::size_t>(protos.size()));
  regula::Stream s(seed, 2000 + subsequence);
  Dataset d;
  d.classes = classes;
  d.x.resize(features, static_cast<Index>(n));
  d.y.resize(n);
  std::vector<float> u(2);
  for (std::size_t j = 0; j < n; ++j) {
    s.uniform(u.data(), 2);
    const auto c = static_cast<Index>(u[0] * static_cast<float>(classes)) % classes;
    const auto b = static_cast<Index>(u[1] * static_cast<float>(blobs)) % blobs;
    auto col = d.x.col(static_cast<Index>(j));
    s.normal(col.data(), static_cast<std::size_t>(features));
    col = 0.35F * protos.col(c * blobs + b) + col;  // weak signal in strong noise
    d.y[j] = c;
  }
  return d;
}

Dataset slice(const Dataset& d, Index begin, Index n) {
  Dataset s;
  s.classes = d.classes;
  s.x = d.x.middleCols(begin, n);
  s.y.assign(d.y.begin() + begin, d.y.begin() + begin + n);
  return s;
}

std::vector<Index> permutation(Index n, std::uint64_t seed, std::uint64_t subsequence) {
  std::vector<Index> p(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) p[static_cast<std::size_t>(i)] = i;
  regula::Stream s(seed, subsequence);
  std::vector<double> u(static_cast<std::size_t>(n));
  s.uniform(u.data(), u.size());
  for (Index i = n - 1; i > 0; --i) {
    const auto j = static_cast<Index>(u[static_cast<std::size_t>(i)] * static_cast<double>(i + 1));
    std::swap(p[static_cast<std::size_t>(i)], p[static_cast<std::size_t>(j)]);
  }
  return p;
}

void gather(const Mat& x, const std::vector<std::int64_t>& y, const std::vector<Index>& idx,
            std::size_t begin, std::size_t n, Mat& out, Labels& labels) {
  out.resize(x.rows(), static_cast<Index>(n));
  labels.resize(static_cast<Index>(n));
  for (std::size_t j = 0; j < n; ++j) {
    const Index src = idx[begin + j];
    out.col(static_cast<Index>(j)) = x.col(src);
    labels(static_cast<Index>(j)) = y[static_cast<std::size_t>(src)];
  }
}

}  // namespace ex
