// Global small-loss selection across ranks against gathering every loss to rank 0, sorting
// there and scattering the decisions back. Run under mpiexec (bench/anchors/mpi.py does);
// prints JSON rows for bench/compare.sh, group `mpi`.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <vector>

#include <mpi.h>

#include "regula/integrations/mpi.hpp"

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// Median over `reps` of the slowest rank's time of f().
template <class F>
double time_collective(int reps, F&& f) {
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    MPI_Barrier(MPI_COMM_WORLD);
    const double t0 = now();
    f();
    double dt = now() - t0;
    MPI_Allreduce(MPI_IN_PLACE, &dt, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    t.push_back(dt);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const std::size_t n = 16384;
  const double rate = 0.5;
  std::vector<float> loss(n);
  regula::Stream s(1, static_cast<std::uint64_t>(rank));
  s.uniform(loss.data(), n);

  regula::mpi::GlobalSmallLossSelector<float> global(MPI_COMM_WORLD);
  const double t_global = time_collective(51, [&] { global.select(loss.data(), n, rate); });
  const std::size_t global_bytes = global.bytes_sent();

  // The obvious alternative: rank 0 gathers, sorts by (loss, index), scatters keep flags.
  std::vector<float> all(rank == 0 ? n * static_cast<std::size_t>(size) : 0);
  std::vector<regula::Index> idx(all.size());
  std::vector<unsigned char> flags(all.size()), mine(n);
  const double t_gather = time_collective(51, [&] {
    MPI_Gather(loss.data(), static_cast<int>(n), MPI_FLOAT, all.data(), static_cast<int>(n),
               MPI_FLOAT, 0, MPI_COMM_WORLD);
    if (rank == 0) {
      std::iota(idx.begin(), idx.end(), 0);
      std::sort(idx.begin(), idx.end(), [&](regula::Index a, regula::Index b) {
        const float la = all[static_cast<std::size_t>(a)], lb = all[static_cast<std::size_t>(b)];
        return la < lb || (la == lb && a < b);
      });
      std::fill(flags.begin(), flags.end(), 0);
      const std::size_t keep = regula::keep_count(all.size(), rate);
      for (std::size_t j = 0; j < keep; ++j) flags[static_cast<std::size_t>(idx[j])] = 1;
    }
    MPI_Scatter(flags.data(), static_cast<int>(n), MPI_UNSIGNED_CHAR, mine.data(),
                static_cast<int>(n), MPI_UNSIGNED_CHAR, 0, MPI_COMM_WORLD);
  });
  const std::size_t gather_bytes_rank0 =
      n * static_cast<std::size_t>(size - 1);  // scatter of flags
  const std::size_t gather_bytes_other = n * sizeof(float);

  if (rank == 0) {
    std::printf(
        "{\"group\": \"mpi\", \"case\": \"select_%dx%zu\", \"impl\": \"regula\", \"seconds\": "
        "%.6e, "
        "\"bytes_sent_per_rank\": %zu}\n",
        size, n, t_global, global_bytes);
    std::printf(
        "{\"group\": \"mpi\", \"case\": \"select_%dx%zu\", \"impl\": \"gather_sort\", \"seconds\": "
        "%.6e, "
        "\"bytes_sent_rank0\": %zu, \"bytes_sent_other_ranks\": %zu}\n",
        size, n, t_gather, gather_bytes_rank0, gather_bytes_other);
  }
  MPI_Finalize();
  return 0;
}
