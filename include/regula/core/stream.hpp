/// @file
/// regula::Stream, a position in the Philox4x32-10 sequence: (seed, subsequence, offset).
#ifndef REGULA_CORE_STREAM_HPP
#define REGULA_CORE_STREAM_HPP

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "regula/core/philox.hpp"

namespace regula {

/// A counter-based random stream: block `offset + j` of the stream is
/// `philox4x32_10(counter = (offset + j, subsequence), key = seed)`, four 32-bit words.
///
/// Every call that draws takes its bits from documented block positions relative to
/// `offset()` and then advances `offset()` past the blocks it used (whole blocks only), so:
/// - the same (seed, subsequence, offset) gives the same numbers on any machine, SIMD width
///   and thread count;
/// - a layer can recompute in backward the mask it drew in forward from a saved copy of the
///   stream, storing no mask;
/// - different subsequences are disjoint: give each rank, layer or worker its own.
///
/// A Stream is a small value (three 64-bit integers): copy it to save a position.
class Stream {
 public:
  /// Block 0 of subsequence 0 under `seed`.
  constexpr explicit Stream(std::uint64_t seed, std::uint64_t subsequence = 0,
                            std::uint64_t offset = 0) noexcept
      : seed_(seed), subsequence_(subsequence), offset_(offset) {}

  /// The seed the stream was made from.
  [[nodiscard]] constexpr std::uint64_t seed() const noexcept { return seed_; }
  /// The stream's subsequence: streams of one seed with different subsequences are independent.
  [[nodiscard]] constexpr std::uint64_t subsequence() const noexcept { return subsequence_; }
  /// The next unused block.
  [[nodiscard]] constexpr std::uint64_t offset() const noexcept { return offset_; }
  /// The Philox key of the seed.
  [[nodiscard]] constexpr PhiloxKey key() const noexcept { return philox_key(seed_); }

  /// A stream with the same seed on another subsequence, from block 0. Subsequences never
  /// share a block.
  [[nodiscard]] constexpr Stream substream(std::uint64_t subsequence) const noexcept {
    return Stream(seed_, subsequence, 0);
  }

  /// Skips `blocks` blocks.
  constexpr void skip(std::uint64_t blocks) noexcept { offset_ += blocks; }

  /// Returns the current offset and advances past `blocks` blocks: how a primitive claims the
  /// blocks it is about to use.
  constexpr std::uint64_t take(std::uint64_t blocks) noexcept {
    const std::uint64_t first = offset_;
    offset_ += blocks;
    return first;
  }

  /// Block `offset() + j`, without advancing.
  [[nodiscard]] constexpr PhiloxBlock block(std::uint64_t j = 0) const noexcept {
    return philox4x32_10(philox_counter(offset_ + j, subsequence_), key());
  }

  /// Fills `out[0..n)` with uniforms in [0, 1).
  /// - float: element i is `(w >> 8)·2⁻²⁴` with w word i mod 4 of block i/4 (24-bit
  ///   resolution, every float multiple of 2⁻²⁴ equally likely);
  /// - double: element i is `(hi·2²¹ + lo/2¹¹)·2⁻⁵³` with (lo, hi) words 2(i mod 2) and
  ///   2(i mod 2)+1 of block i/2 (53-bit resolution).
  /// Advances by ⌈n/4⌉ blocks (float) or ⌈n/2⌉ blocks (double).
  template <class T>
  void uniform(T* out, std::size_t n) noexcept {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "Stream::uniform: T must be float or double");
    constexpr std::size_t per_block = std::is_same_v<T, float> ? 4 : 2;
    const std::size_t blocks = (n + per_block - 1) / per_block;
    const std::uint64_t first = take(blocks);
    for (std::size_t b = 0; b < blocks; ++b) {
      const PhiloxBlock w = philox4x32_10(philox_counter(first + b, subsequence_), key());
      for (std::size_t j = 0; j < per_block; ++j) {
        const std::size_t i = b * per_block + j;
        if (i >= n) break;
        out[i] = to_uniform<T>(w, j);
      }
    }
  }

  /// Fills `out[0..n)` with standard normals by Box–Muller: block i/4 gives elements 4k..4k+3,
  /// words (0, 1) the first pair and (2, 3) the second, u₁ = (w + 1)·2⁻³² ∈ (0, 1],
  /// u₂ = w·2⁻³², z = √(−2 ln u₁)·(cos 2πu₂, sin 2πu₂), computed in double. Advances ⌈n/4⌉ blocks.
  /// The tails are bounded (|z| ≤ 6.66) by the 32-bit resolution of u₁.
  template <class T>
  void normal(T* out, std::size_t n) noexcept {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "Stream::normal: T must be float or double");
    const std::size_t blocks = (n + 3) / 4;
    const std::uint64_t first = take(blocks);
    for (std::size_t b = 0; b < blocks; ++b) {
      const PhiloxBlock w = philox4x32_10(philox_counter(first + b, subsequence_), key());
      double z[4];
      box_muller(w[0], w[1], z[0], z[1]);
      box_muller(w[2], w[3], z[2], z[3]);
      for (std::size_t j = 0; j < 4; ++j) {
        const std::size_t i = b * 4 + j;
        if (i >= n) break;
        out[i] = static_cast<T>(z[j]);
      }
    }
  }

  /// One uniform in [0, 1) (element 0 of `uniform`); advances one block.
  template <class T>
  [[nodiscard]] T uniform() noexcept {
    T v{};
    uniform(&v, 1);
    return v;
  }

  /// One standard normal (element 0 of `normal`); advances one block.
  template <class T>
  [[nodiscard]] T normal() noexcept {
    T v{};
    normal(&v, 1);
    return v;
  }

  /// Equal seed and subsequence: the two streams give the same draws.
  friend constexpr bool operator==(const Stream& a, const Stream& b) noexcept {
    return a.seed_ == b.seed_ && a.subsequence_ == b.subsequence_ && a.offset_ == b.offset_;
  }
  /// Not operator==.
  friend constexpr bool operator!=(const Stream& a, const Stream& b) noexcept { return !(a == b); }

 private:
  template <class T>
  static T to_uniform(const PhiloxBlock& w, std::size_t j) noexcept {
    if constexpr (std::is_same_v<T, float>) {
      return static_cast<float>(w[j] >> 8) * 0x1.0p-24F;
    } else {
      const std::uint64_t bits =
          (std::uint64_t{w[2 * j + 1]} << 21) | (std::uint64_t{w[2 * j]} >> 11);
      return static_cast<double>(bits) * 0x1.0p-53;
    }
  }

  static void box_muller(std::uint32_t a, std::uint32_t b, double& z0, double& z1) noexcept {
    constexpr double two_pi = 6.283185307179586476925286766559;
    const double u1 = (static_cast<double>(a) + 1.0) * 0x1.0p-32;
    const double u2 = static_cast<double>(b) * 0x1.0p-32;
    const double r = std::sqrt(-2.0 * std::log(u1));
    z0 = r * std::cos(two_pi * u2);
    z1 = r * std::sin(two_pi * u2);
  }

  std::uint64_t seed_;
  std::uint64_t subsequence_;
  std::uint64_t offset_;
};

}  // namespace regula

#endif  // REGULA_CORE_STREAM_HPP
