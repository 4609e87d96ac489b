// Example support (not part of the library): IDX files through zlib, Fashion-MNIST discovery
// with a synthetic fallback, subsets and seeded shuffles.
#ifndef REGULA_EXAMPLES_COMMON_DATA_HPP
#define REGULA_EXAMPLES_COMMON_DATA_HPP

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <Eigen/Core>

namespace ex {

using Index = Eigen::Index;
using Mat = Eigen::MatrixXf;
using Vec = Eigen::VectorXf;
/// Class labels, one per sample, 64-bit as regula's (and PyTorch's) class-index targets.
using Labels = Eigen::Matrix<std::int64_t, Eigen::Dynamic, 1>;

/// An IDX array (the MNIST file format): its dimensions and its unsigned-byte payload.
struct IdxArray {
  std::vector<std::uint32_t> dims;
  std::vector<std::uint8_t> data;
};

/// Reads an IDX file of unsigned bytes (type 0x08), gzip-compressed or not (zlib reads both),
/// keeping at most `max_items` items along the first dimension (0: all).
/// @throws std::runtime_error on a missing or malformed file.
IdxArray read_idx(const std::string& path, std::size_t max_items = 0);

/// A labelled data set: x is features × samples (one column per sample), y the labels.
struct Dataset {
  Mat x;
  std::vector<std::int64_t> y;
  std::int64_t classes = 0;
  [[nodiscard]] Index size() const { return x.cols(); }
};

/// Where Fashion-MNIST was found, and the data.
struct TrainTest {
  Dataset train, test;
  std::string source;  ///< the directory read, or "synthetic"
  bool synthetic = false;
};

/// The Fashion-MNIST directory: `dir` if not empty, else $REGULA_FASHION_MNIST_DIR if set, else
/// Debian's /usr/share/datasets/fashion-mnist (package dataset-fashion-mnist). Returns "" when
/// the four .gz files are not in that one directory.
std::string find_fashion_mnist(const std::string& dir);

/// Loads at most `max_train`/`max_test` samples (0: all) of Fashion-MNIST, pixels scaled to
/// [0, 1] and standardized with the training set's mean 0.2860 and std 0.3530. When the data set
/// is missing, prints how to get it and returns a synthetic 10-class task of the same shape
/// (784 features) with `synthetic_train`/`synthetic_test` samples.
TrainTest load_fashion_mnist(const std::string& dir, std::size_t max_train, std::size_t max_test,
                             std::size_t synthetic_train = 6000, std::size_t synthetic_test = 2000,
                             std::uint64_t seed = 7);

/// A synthetic 10-class task in 784 dimensions: each class is a mixture of three Gaussian blobs
/// around random prototypes: a learnable stand-in when the data set is missing (a clean MLP
/// reaches ~99%), which says nothing about Fashion-MNIST.
Dataset synthetic_task(std::size_t n, std::uint64_t seed, std::uint64_t subsequence);

/// Columns [begin, begin + n) of `d`.
Dataset slice(const Dataset& d, Index begin, Index n);

/// A permutation of 0..n−1 (Fisher–Yates) drawn from regula::Stream(seed, subsequence).
std::vector<Index> permutation(Index n, std::uint64_t seed, std::uint64_t subsequence);

/// Gathers columns `idx[begin..begin+n)` of `x` into `out` (resized to x.rows() × n) and their
/// labels into `labels`.
void gather(const Mat& x, const std::vector<std::int64_t>& y, const std::vector<Index>& idx,
            std::size_t begin, std::size_t n, Mat& out, Labels& labels);

}  // namespace ex

#endif  // REGULA_EXAMPLES_COMMON_DATA_HPP
