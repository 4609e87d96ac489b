// Test runner for the MPI integration: MPI around a Catch2 session. Run under mpiexec with any
// number of ranks; every rank runs every test, and a failure on any rank fails the run.
#define CATCH_CONFIG_RUNNER
#include <mpi.h>

#include "support/catch.hpp"

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  Catch::Session session;
  if (rank != 0) session.configData().showSuccessfulTests = false;
  int failed = session.run(argc, argv);
  int any_failed = 0;
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return any_failed;
}
