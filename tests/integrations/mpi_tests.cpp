#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <mpi.h>

#include "regula/integrations/mpi.hpp"
#include "regula/layers/dropout.hpp"
#include "regula/losses/sinkhorn_kd.hpp"

#include "support/catch.hpp"

namespace {

int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
int world_size() {
  int s = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

/// Shard sizes: uneven, and rank 1 (when present) holds nothing.
std::size_t shard_size(int rank) {
  return rank == 1 ? 0 : static_cast<std::size_t>(13 * (rank + 1) + 7 * rank);
}

std::size_t shard_offset(int rank) {
  std::size_t o = 0;
  for (int r = 0; r < rank; ++r) o += shard_size(r);
  return o;
}

/// The global batch every rank can compute: ties, NaNs, infinities.
template <class T>
std::vector<T> global_losses(std::size_t n, std::uint64_t seed) {
  regula::Stream s(seed);
  std::vector<double> u(n);
  s.uniform(u.data(), n);
  std::vector<T> loss(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (u[i] < 0.05)
      loss[i] = std::numeric_limits<T>::quiet_NaN();
    else if (u[i] < 0.08)
      loss[i] = std::numeric_limits<T>::infinity();
    else
      loss[i] = static_cast<T>(std::floor(u[i] * 16) / 8);
  }
  return loss;
}

std::vector<regula::Index> gather_global_indices(const std::vector<regula::Index>& local,
                                                 std::size_t offset) {
  std::vector<long long> mine;
  for (auto i : local) mine.push_back(static_cast<long long>(i) + static_cast<long long>(offset));
  const int size = world_size();
  std::vector<int> counts(static_cast<std::size_t>(size)), displs(static_cast<std::size_t>(size));
  int n = static_cast<int>(mine.size());
  MPI_Allgather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, MPI_COMM_WORLD);
  int total = 0;
  for (std::size_t r = 0; r < counts.size(); ++r) {
    displs[r] = total;
    total += counts[r];
  }
  std::vector<long long> all(static_cast<std::size_t>(total));
  MPI_Allgatherv(mine.data(), n, MPI_LONG_LONG, all.data(), counts.data(), displs.data(),
                 MPI_LONG_LONG, MPI_COMM_WORLD);
  return std::vector<regula::Index>(all.begin(), all.end());
}

}  // namespace

TEMPLATE_TEST_CASE("Global selection equals single-process selection on the concatenated batch",
                   "[mpi][selection]", float, double) {
  const int rank = world_rank();
  const int size = world_size();
  const std::size_t total = shard_offset(size);
  for (const std::uint64_t seed : {1U, 2U, 3U}) {
    const auto all = global_losses<TestType>(total, seed);
    const std::size_t off = shard_offset(rank), n = shard_size(rank);
    for (const double rate : {0.0, 0.2, 0.5, 0.9, 1.0}) {
      regula::mpi::GlobalSmallLossSelector<TestType> global(MPI_COMM_WORLD);
      const auto local = global.select(all.data() + off, n, rate);
      for (auto i : local) REQUIRE((i >= 0 && static_cast<std::size_t>(i) < n));
      const auto got = gather_global_indices(local, off);
      regula::SmallLossSelector<TestType> single;
      const auto expected = single.select(all.data(), total, regula::keep_count(total, rate));
      REQUIRE(got == expected);
      CHECK(global.global_kept() == expected.size());
      CHECK(global.bytes_sent() == sizeof(regula::mpi::detail::Declaration) + n * sizeof(TestType));
    }
  }
}

TEST_CASE("Global Co-teaching gradients and losses equal the single-process ones",
          "[mpi][coteaching]") {
  const int rank = world_rank();
  const std::size_t total = shard_offset(world_size());
  const auto l1 = global_losses<double>(total, 11), l2 = global_losses<double>(total, 12);
  // Finite losses only: the training loss is a mean.
  regula::Vector<double> a1(static_cast<regula::Index>(total)),
      a2(static_cast<regula::Index>(total));
  for (std::size_t i = 0; i < total; ++i) {
    a1(static_cast<regula::Index>(i)) =
        std::isfinite(l1[i]) ? l1[i] : 5.0 + static_cast<double>(i % 3);
    a2(static_cast<regula::Index>(i)) =
        std::isfinite(l2[i]) ? l2[i] : 5.0 + static_cast<double>(i % 5);
  }
  const regula::Matrix<double> g1 =
      regula::Matrix<double>::Random(3, static_cast<regula::Index>(total));
  const regula::Matrix<double> g2 =
      regula::Matrix<double>::Random(3, static_cast<regula::Index>(total));
  regula::Matrix<double> s1 = g1, s2 = g2;
  regula::CoTeaching<double> single;
  const auto expected = single.exchange(a1, a2, 0.3, s1, s2);

  const auto off = static_cast<regula::Index>(shard_offset(rank));
  const auto n = static_cast<regula::Index>(shard_size(rank));
  regula::Vector<double> m1 = a1.segment(off, n), m2 = a2.segment(off, n);
  regula::Matrix<double> h1 = g1.middleCols(off, n), h2 = g2.middleCols(off, n);
  regula::mpi::GlobalCoTeaching<double> global(MPI_COMM_WORLD);
  const auto got = global.exchange(m1, m2, 0.3, h1, h2);
  CHECK(got.kept1 == expected.kept1);
  CHECK(std::abs(got.loss1 - expected.loss1) < 1e-12);
  CHECK(std::abs(got.loss2 - expected.loss2) < 1e-12);
  CHECK(h1 == s1.middleCols(off, n));  // bit for bit: same column scale 1/k
  CHECK(h2 == s2.middleCols(off, n));
}

TEST_CASE("Global Co-teaching+ equals the single-process exchange", "[mpi][coteaching_plus]") {
  const int rank = world_rank();
  const std::size_t total = shard_offset(world_size());
  const auto t = static_cast<regula::Index>(total);
  regula::Stream s(21);
  regula::Matrix<double> z1(4, t), z2(4, t);
  s.uniform(z1.data(), static_cast<std::size_t>(z1.size()));
  s.uniform(z2.data(), static_cast<std::size_t>(z2.size()));
  regula::Vector<double> l1(t), l2(t);
  s.uniform(l1.data(), total);
  s.uniform(l2.data(), total);
  const regula::Matrix<double> g1 = regula::Matrix<double>::Random(4, t),
                               g2 = regula::Matrix<double>::Random(4, t);
  for (const double epoch : {0.0, 5.0}) {
    regula::Matrix<double> s1 = g1, s2 = g2;
    regula::CoTeachingPlus<double> single({1, regula::EmptyDisagreement::all_samples});
    const auto expected = single.exchange(z1, z2, l1, l2, 0.4, epoch, s1, s2);
    const auto off = static_cast<regula::Index>(shard_offset(rank));
    const auto n = static_cast<regula::Index>(shard_size(rank));
    regula::Matrix<double> h1 = g1.middleCols(off, n), h2 = g2.middleCols(off, n);
    regula::mpi::GlobalCoTeachingPlus<double> global(MPI_COMM_WORLD,
                                                     {1, regula::EmptyDisagreement::all_samples});
    const regula::Matrix<double> y1 = z1.middleCols(off, n), y2 = z2.middleCols(off, n);
    const regula::Vector<double> k1 = l1.segment(off, n), k2 = l2.segment(off, n);
    const auto got = global.exchange(y1, y2, k1, k2, 0.4, epoch, h1, h2);
    CHECK(got.kept1 == expected.kept1);
    CHECK(std::abs(got.loss1 - expected.loss1) < 1e-12);
    CHECK(std::abs(got.loss2 - expected.loss2) < 1e-12);
    CHECK(h1 == s1.middleCols(off, n));
    CHECK(h2 == s2.middleCols(off, n));
  }
}

TEST_CASE("Rank streams: rank r's masks equal the documented single-process reproduction",
          "[mpi][streams]") {
  const int rank = world_rank();
  const regula::Stream base(77, 3);
  regula::Stream mine = regula::mpi::rank_stream(base, MPI_COMM_WORLD);
  CHECK(mine == regula::Stream(77, 3 + (static_cast<std::uint64_t>(rank) << 32), 0));
  const regula::Dropout<float> drop(regula::DropoutOptions{0.5});
  const regula::Matrix<float> x = regula::Matrix<float>::Ones(64, 8);
  regula::Matrix<float> y(64, 8), z(64, 8);
  (void)drop.forward(x, y, mine);
  regula::Stream replay = regula::mpi::rank_stream(base, static_cast<std::uint64_t>(rank));
  (void)drop.forward(x, z, replay);
  CHECK(y == z);
  // Different ranks draw different masks: compare with rank 0's reproduction.
  if (rank != 0) {
    regula::Stream r0 = regula::mpi::rank_stream(base, std::uint64_t{0});
    (void)drop.forward(x, z, r0);
    CHECK(y != z);
  }
}

TEST_CASE("Mismatched arguments give a clear error on every rank, never a hang", "[mpi][errors]") {
  const int rank = world_rank();
  const int size = world_size();
  std::vector<float> loss(4, 1.0F);
  {
    regula::mpi::GlobalSmallLossSelector<float> sel(MPI_COMM_WORLD);
    const double rate = rank == size - 1 ? 0.25 : 0.5;
    if (size > 1) {
      CHECK_THROWS_WITH(sel.select(loss.data(), loss.size(), rate),
                        Catch::Matchers::Contains("forget_rate must be the same on every rank"));
    }
  }
  {
    // The last rank passes gradients with the wrong number of columns.
    regula::mpi::GlobalCoTeaching<float> ct(MPI_COMM_WORLD);
    regula::Vector<float> l = regula::Vector<float>::Ones(4);
    regula::Matrix<float> g1(2, 4), g2(2, rank == size - 1 ? 3 : 4);
    if (rank == size - 1) {
      CHECK_THROWS_WITH(
          ct.exchange(l, l, 0.5, g1, g2),
          Catch::Matchers::Contains("grad2 must have one column per sample (4), got 3"));
    } else {
      CHECK_THROWS_WITH(ct.exchange(l, l, 0.5, g1, g2),
                        Catch::Matchers::Contains("passed invalid arguments"));
    }
  }
}

TEST_CASE("Global Sinkhorn KD gradients equal the single-process ones to 1e-12",
          "[mpi][sinkhorn]") {
  const int rank = world_rank();
  // Every rank holds at least one sample here: rank 1's shard gets 2 columns instead of none.
  auto size_of = [](int r) { return r == 1 ? 2 : static_cast<regula::Index>(shard_size(r)); };
  regula::Index total = 0, off = 0;
  for (int r = 0; r < world_size(); ++r) {
    if (r == rank) off = total;
    total += size_of(r);
  }
  const regula::Index c = 6, n = size_of(rank);
  regula::Stream s(99);
  regula::Matrix<double> z(c, total), v(c, total);
  s.normal(z.data(), static_cast<std::size_t>(z.size()));
  s.normal(v.data(), static_cast<std::size_t>(v.size()));
  const auto opts = regula::SinkhornKDOptions{};
  regula::Matrix<double> dz(c, total);
  const double expected = regula::sinkhorn_kd(z, v, dz, opts);
  regula::mpi::GlobalSinkhornKD<double> global(MPI_COMM_WORLD, opts);
  regula::Matrix<double> mine(c, n);
  const regula::Matrix<double> zl = z.middleCols(off, n), vl = v.middleCols(off, n);
  const double got = global.forward_backward(zl, vl, mine);
  CHECK(std::abs(got - expected) <= 1e-12 * std::max(1.0, std::abs(expected)));
  CHECK((mine - dz.middleCols(off, n)).cwiseAbs().maxCoeff() <= 1e-12);
}

TEST_CASE("Global JoCoR equals JoCoR on the concatenated batch", "[mpi][jocor]") {
  const int rank = world_rank();
  const auto total = static_cast<regula::Index>(shard_offset(world_size()));
  regula::Stream s(31);
  regula::Matrix<double> z1(5, total), z2(5, total);
  s.normal(z1.data(), static_cast<std::size_t>(z1.size()));
  s.normal(z2.data(), static_cast<std::size_t>(z2.size()));
  regula::Labels y(total);
  for (regula::Index j = 0; j < total; ++j) y(j) = (j * 3) % 5;
  regula::Matrix<double> g1(5, total), g2(5, total);
  regula::JoCoR<double> single({0.6});
  const auto expected = single.step(z1, z2, y, 0.3, g1, g2);
  const auto off = static_cast<regula::Index>(shard_offset(rank));
  const auto n = static_cast<regula::Index>(shard_size(rank));
  regula::mpi::GlobalJoCoR<double> global(MPI_COMM_WORLD, {0.6});
  const regula::Matrix<double> a1 = z1.middleCols(off, n), a2 = z2.middleCols(off, n);
  const regula::Labels ly = y.segment(off, n);
  regula::Matrix<double> h1(5, n), h2(5, n);
  const auto got = global.step(a1, a2, ly, 0.3, h1, h2);
  CHECK(got.kept == expected.kept);
  CHECK(std::abs(got.loss - expected.loss) < 1e-12);
  // Bit for bit: a sample's loss and gradients do not depend on where its column sits.
  CHECK(h1 == g1.middleCols(off, n));
  CHECK(h2 == g2.middleCols(off, n));
}

namespace {

using Catch::Matchers::Contains;

/// What every rank but the bad one is told when one rank passes an invalid argument.
std::string other_rank_failed(int bad) {
  return "rank " + std::to_string(bad) + " passed invalid arguments (its own error says which)";
}

template <class T>
bool same_bits(const regula::Matrix<T>& a, const regula::Matrix<T>& b) {
  if (a.rows() != b.rows() || a.cols() != b.cols()) return false;
  return a.size() == 0 ||  // an empty shard's data pointer may be null
         std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.size()) * sizeof(T)) == 0;
}

}  // namespace

TEMPLATE_TEST_CASE(
    "Global JoCoR selects, and differentiates, bit for bit as JoCoR::step on the concatenated "
    "batch",
    "[mpi][jocor]", float, double) {
  using T = TestType;
  const int rank = world_rank();
  const auto total = static_cast<regula::Index>(shard_offset(world_size()));
  const regula::Index c = 5;
  // Seven distinct samples repeated over the global batch: many exact ties across ranks, and a
  // NaN sample (its loss ranks last).
  regula::Stream s(41);
  regula::Matrix<double> base1(c, 7), base2(c, 7);
  s.normal(base1.data(), static_cast<std::size_t>(base1.size()));
  s.normal(base2.data(), static_cast<std::size_t>(base2.size()));
  base1 *= 3.0;
  base2 *= 3.0;
  base1(2, 6) = std::numeric_limits<double>::quiet_NaN();
  regula::Matrix<T> z1(c, total), z2(c, total);
  regula::Labels y(total);
  for (regula::Index j = 0; j < total; ++j) {
    z1.col(j) = base1.col(j % 7).cast<T>();
    z2.col(j) = base2.col(j % 7).cast<T>();
    y(j) = (j % 7) % c;
  }
  const auto off = static_cast<regula::Index>(shard_offset(rank));
  const auto n = static_cast<regula::Index>(shard_size(rank));
  const regula::Matrix<T> a1 = z1.middleCols(off, n), a2 = z2.middleCols(off, n);
  const regula::Labels ly = y.segment(off, n);
  for (const double rate : {0.0, 0.3, 0.5, 0.8, 1.0}) {
    INFO("forget_rate " << rate);
    regula::Matrix<T> g1(c, total), g2(c, total);
    regula::JoCoR<T> single({0.4});
    const auto expected = single.step(z1, z2, y, rate, g1, g2);
    regula::mpi::GlobalJoCoR<T> global(MPI_COMM_WORLD, {0.4});
    regula::Matrix<T> h1(c, n), h2(c, n);
    const auto got = global.step(a1, a2, ly, rate, h1, h2);
    CHECK(gather_global_indices(global.selected(), static_cast<std::size_t>(off)) ==
          single.selected());
    CHECK(got.kept == expected.kept);
    CHECK(std::memcmp(&got.loss, &expected.loss, sizeof(T)) == 0);
    CHECK(same_bits<T>(h1, g1.middleCols(off, n)));
    CHECK(same_bits<T>(h2, g2.middleCols(off, n)));
  }
}

TEST_CASE(
    "A bad forget rate on one rank: that rank names its value, every other rank names the rank",
    "[mpi][errors]") {
  const int rank = world_rank();
  const int bad = world_size() - 1;
  const double rate = rank == bad ? 1.5 : 0.5;
  const auto expect = [&](auto&& call) {
    if (rank == bad) {
      CHECK_THROWS_WITH(call(), Contains("forget_rate must be in [0, 1], got 1.5"));
    } else {
      CHECK_THROWS_WITH(call(), Contains(other_rank_failed(bad)));
    }
  };
  const regula::Vector<float> l = regula::Vector<float>::Ones(4);
  regula::Matrix<float> g1(3, 4), g2(3, 4);
  const regula::Matrix<float> z1 = regula::Matrix<float>::Random(3, 4),
                              z2 = regula::Matrix<float>::Random(3, 4);
  regula::Labels y(4);
  y << 0, 1, 2, 0;
  regula::mpi::GlobalSmallLossSelector<float> sel(MPI_COMM_WORLD);
  expect([&] { (void)sel.select(l, rate); });
  regula::mpi::GlobalCoTeaching<float> ct(MPI_COMM_WORLD);
  expect([&] { (void)ct.exchange(l, l, rate, g1, g2); });
  regula::mpi::GlobalCoTeachingPlus<float> ctp(MPI_COMM_WORLD, {1});
  expect([&] { (void)ctp.exchange(z1, z2, l, l, rate, 0.0, g1, g2); });
  expect([&] { (void)ctp.exchange(z1, z2, l, l, rate, 3.0, g1, g2); });
  regula::mpi::GlobalJoCoR<float> jc(MPI_COMM_WORLD);
  expect([&] { (void)jc.step(z1, z2, y, rate, g1, g2); });
  // A bad label on one rank: that rank names it.
  regula::Labels yb = y;
  if (rank == bad) yb(2) = 3;
  if (rank == bad) {
    CHECK_THROWS_WITH(jc.step(z1, z2, yb, 0.5, g1, g2),
                      Contains("labels(2) must be in [0, 3), got 3"));
  } else {
    CHECK_THROWS_WITH(jc.step(z1, z2, yb, 0.5, g1, g2), Contains(other_rank_failed(bad)));
  }
  // The objects still work after the refused calls.
  CHECK_NOTHROW(jc.step(z1, z2, y, 0.5, g1, g2));
  CHECK_NOTHROW(sel.select(l, 0.5));
}

TEST_CASE("Co-teaching+ and JoCoR across ranks agree epoch, options and class count",
          "[mpi][errors]") {
  const int rank = world_rank();
  const int size = world_size();
  const regula::Vector<float> l = regula::Vector<float>::Ones(4);
  regula::Matrix<float> g1(3, 4), g2(3, 4);
  const regula::Matrix<float> z1 = regula::Matrix<float>::Random(3, 4),
                              z2 = regula::Matrix<float>::Random(3, 4);
  regula::Labels y(4);
  y << 0, 1, 2, 0;
  // Ranks on both sides of init_epochs = 1 would take different branches.
  regula::mpi::GlobalCoTeachingPlus<float> ctp(MPI_COMM_WORLD, {1});
  const double epoch = rank == 0 ? 0.5 : 3.0;
  if (size > 1) {
    CHECK_THROWS_WITH(
        ctp.exchange(z1, z2, l, l, 0.5, epoch, g1, g2),
        Contains("epoch must be the same on every rank; rank 0 has 0.5, rank 1 has 3"));
  }
  // The same epoch, but init_epochs differ.
  regula::mpi::GlobalCoTeachingPlus<float> uneven(MPI_COMM_WORLD, {rank == 0 ? 1.0 : 5.0});
  if (size > 1) {
    CHECK_THROWS_WITH(uneven.exchange(z1, z2, l, l, 0.5, 2.0, g1, g2),
                      Contains("init_epochs must be the same on every rank"));
  }
  // A negative epoch is refused on the rank that passes it.
  const int bad = size - 1;
  if (rank == bad) {
    CHECK_THROWS_WITH(ctp.exchange(z1, z2, l, l, 0.5, -1.0, g1, g2),
                      Contains("epoch must be >= 0, got -1"));
  } else {
    CHECK_THROWS_WITH(ctp.exchange(z1, z2, l, l, 0.5, 2.0, g1, g2),
                      Contains(other_rank_failed(bad)));
  }
  // Another class count on rank 0.
  const regula::Index c = rank == 0 ? 4 : 3;
  const regula::Matrix<float> w1 = regula::Matrix<float>::Random(c, 4),
                              w2 = regula::Matrix<float>::Random(c, 4);
  regula::Matrix<float> k1(c, 4), k2(c, 4);
  regula::mpi::GlobalJoCoR<float> jc(MPI_COMM_WORLD);
  regula::mpi::GlobalCoTeachingPlus<float> plus(MPI_COMM_WORLD);
  if (size > 1) {
    const std::string msg =
        "the number of classes must be the same on every rank; rank 0 has 4, rank 1 has 3";
    CHECK_THROWS_WITH(jc.step(w1, w2, y, 0.5, k1, k2), Contains(msg));
    CHECK_THROWS_WITH(plus.exchange(w1, w2, l, l, 0.5, 2.0, k1, k2), Contains(msg));
  }
  // Another λ on rank 0.
  regula::mpi::GlobalJoCoR<float> lam(MPI_COMM_WORLD, {rank == 0 ? 0.25 : 0.5});
  if (size > 1) {
    CHECK_THROWS_WITH(lam.step(z1, z2, y, 0.5, g1, g2),
                      Contains("lambda must be the same on every rank"));
  }
  // After agreeing, the same objects work.
  CHECK_NOTHROW(ctp.exchange(z1, z2, l, l, 0.5, 2.0, g1, g2));
  CHECK_NOTHROW(ctp.exchange(z1, z2, l, l, 0.5, 0.0, g1, g2));
}

TEST_CASE("Global Sinkhorn KD agrees its options across ranks", "[mpi][sinkhorn][errors]") {
  const int rank = world_rank();
  const int size = world_size();
  const int bad = size - 1;
  const regula::Matrix<double> z = regula::Matrix<double>::Random(4, 3),
                               v = regula::Matrix<double>::Random(4, 3);
  regula::Matrix<double> dz(4, 3);
  {
    // iterations = 0 on one rank: it names iterations, the others name it.
    regula::mpi::GlobalSinkhornKD<double> g(
        MPI_COMM_WORLD, regula::SinkhornKDOptions{}.with_iterations(rank == bad ? 0 : 20));
    if (rank == bad) {
      CHECK_THROWS_WITH(g.forward_backward(z, v, dz), Contains("iterations must be >= 1, got 0"));
    } else {
      CHECK_THROWS_WITH(g.forward_backward(z, v, dz), Contains(other_rank_failed(bad)));
    }
  }
  {
    // Valid but different ε: every rank throws instead of solving a problem of its own.
    regula::mpi::GlobalSinkhornKD<double> g(
        MPI_COMM_WORLD, regula::SinkhornKDOptions{}.with_epsilon(rank == 0 ? 0.1 : 0.2));
    if (size > 1) {
      CHECK_THROWS_WITH(g.forward_backward(z, v, dz),
                        Contains("epsilon must be the same on every rank; rank 0 has "
                                 "0.10000000000000001, rank 1 has 0.20000000000000001"));
    } else {
      CHECK_NOTHROW(g.forward_backward(z, v, dz));
    }
  }
  {
    for (const auto& opt : {regula::SinkhornKDOptions{}.with_temperature(rank == 0 ? 2.0 : 3.0),
                            regula::SinkhornKDOptions{}.with_iterations(rank == 0 ? 20 : 21),
                            regula::SinkhornKDOptions{}.with_lambda(rank == 0 ? 1e-3 : 2e-3),
                            regula::SinkhornKDOptions{}.with_grad_mode(
                                rank == 0 ? regula::SinkhornGradMode::unrolled
                                          : regula::SinkhornGradMode::envelope)}) {
      regula::mpi::GlobalSinkhornKD<double> g(MPI_COMM_WORLD, opt);
      if (size > 1) {
        CHECK_THROWS_WITH(g.forward_backward(z, v, dz), Contains("must be the same on every rank"));
      }
    }
  }
  {
    // The same invalid option on every rank: each rank names it.
    regula::mpi::GlobalSinkhornKD<double> g(MPI_COMM_WORLD,
                                            regula::SinkhornKDOptions{}.with_epsilon(-1.0));
    CHECK_THROWS_WITH(g.forward_backward(z, v, dz),
                      Contains("epsilon must be finite and > 0, got -1"));
  }
  {
    // Options that agree: a loss on every rank.
    regula::mpi::GlobalSinkhornKD<double> g(MPI_COMM_WORLD,
                                            regula::SinkhornKDOptions{}.with_epsilon(0.2));
    CHECK_NOTHROW(g.forward_backward(z, v, dz));
  }
}
