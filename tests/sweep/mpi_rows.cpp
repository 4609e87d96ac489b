// Sweep rows of the MPI integration (integrations/mpi.hpp), built with REGULA_WITH_MPI and run
// under mpiexec with 1, 2, 3 and 4 ranks: every rank runs every row, in the same order, so that the
// collective calls match; a row that passes a bad argument passes it on every rank (symmetric)
// or on one rank only (asymmetric), and every rank must throw.
#include <mpi.h>

#include "regula/integrations/mpi.hpp"

#include "sweep/sweep.hpp"

namespace regula::sweep {
namespace {

namespace rm = regula::mpi;
using T = float;
using M = Matrix<T>;
using V = Vector<T>;
constexpr Index C = 4, B = 6;

int rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

int size() {
  int s = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

/// On the ranks where `bad` is true: the call throws regula::invalid_argument naming `param` (and,
/// when given, containing `own`: the rank's own error, not a complaint about the other ranks);
/// elsewhere it throws some regula::invalid_argument (the call cannot succeed globally). The call
/// runs exactly once on every rank, so that the collectives stay matched.
template <class F>
void every_rank_throws(bool bad, const char* param, F&& f, const char* own = nullptr) {
  std::string message;
  bool thrown = false;
  try {
    f();
  } catch (const invalid_argument& e) {
    message = e.what();
    thrown = true;
  }
  INFO("rank " << rank() << (bad ? " (bad)" : "") << ": what(): " << message);
  REQUIRE(thrown);
  if (bad) {
    CHECK(names(message, param));
    if (own != nullptr) CHECK(message.find(own) != std::string::npos);
  }
}

void selector_rows() {
  const std::string s = "regula::mpi::GlobalSmallLossSelector::";
  add_row({s + "GlobalSmallLossSelector/1", s + "select/2", s + "select/3", s + "selected/0",
           s + "global_size/0", s + "global_offset/0", s + "global_kept/0", s + "bytes_sent/0"},
          "the global selection is the single-process selection of the concatenated batch", [] {
            const V all = normal<T>(B * size(), 1, 3);
            const V mine = all.segment(B * rank(), B);
            rm::GlobalSmallLossSelector<T> g(MPI_COMM_WORLD);
            const auto& local = g.select(mine, 0.25);
            SmallLossSelector<T> ref;
            const auto& global =
                ref.select(all, keep_count(static_cast<std::size_t>(all.size()), 0.25));
            std::vector<Index> expect;
            for (Index i : global) {
              if (i >= B * rank() && i < B * (rank() + 1)) expect.push_back(i - B * rank());
            }
            CHECK(local == expect);
            CHECK(g.selected() == expect);
            CHECK(g.global_size() == static_cast<std::size_t>(all.size()));
            CHECK(g.global_offset() == static_cast<std::size_t>(B * rank()));
            CHECK(g.global_kept() == global.size());
            CHECK(g.bytes_sent() > 0U);
            const auto& raw = g.select(mine.data(), B, 0.25);
            CHECK(raw == expect);
          });
  add_row(
      {s + "select/2"}, "forget_rate = 2 on every rank: each rank names forget_rate",
      [] {
        rm::GlobalSmallLossSelector<T> g(MPI_COMM_WORLD);
        const V l = V::Ones(B);
        rejects({"forget_rate"}, [&] { (void)g.select(l, 2.0); });
      },
      "[known:12]");
  add_row(
      {s + "select/3"}, "forget_rate = NaN on the last rank only: that rank names forget_rate",
      [] {
        rm::GlobalSmallLossSelector<T> g(MPI_COMM_WORLD);
        const V l = V::Ones(B);
        const bool bad = rank() == size() - 1;
        every_rank_throws(
            bad, "forget_rate", [&] { (void)g.select(l.data(), B, bad ? nan : 0.5); }, "[0, 1]");
      },
      "[known:12]");
  add_row({s + "select/3"}, "an empty shard on some ranks is valid", [] {
    rm::GlobalSmallLossSelector<T> g(MPI_COMM_WORLD);
    const V l = V::Constant(rank() % 2 == 0 ? B : 0, 1.0F);
    accepts([&] { (void)g.select(l.data(), static_cast<std::size_t>(l.size()), 0.5); });
    CHECK(g.global_size() > 0U);
  });
  add_row({s + "exchange_sizes/4", s + "gather/2", s + "select_gathered/2", s + "share_sizes/1"},
          "the building blocks compose into select", [] {
            const V l = normal<T>(B, 1, 10 + static_cast<std::uint64_t>(rank()));
            rm::GlobalSmallLossSelector<T> a(MPI_COMM_WORLD), b(MPI_COMM_WORLD), c(MPI_COMM_WORLD);
            const auto ref = a.select(l, 0.5);
            b.exchange_sizes("test", B, 0.5, true);
            c.share_sizes(b);
            c.gather(l.data(), B);
            CHECK(c.select_gathered(B, keep_count(c.global_size(), 0.5)) == ref);
          });
  add_row({s + "gathered/0", s + "global_selected/0", s + "use_sizes/3"},
          "gathered() is the global batch; use_sizes sets counts from declarations", [] {
            const V all = normal<T>(B * size(), 1, 4);
            rm::GlobalSmallLossSelector<T> g(MPI_COMM_WORLD);
            (void)g.select(all.segment(B * rank(), B), 0.5);
            REQUIRE(g.gathered().size() == static_cast<std::size_t>(all.size()));
            for (Index i = 0; i < all.size(); ++i)
              CHECK(g.gathered()[static_cast<std::size_t>(i)] == all[i]);
            SmallLossSelector<T> ref;
            CHECK(g.global_selected() ==
                  ref.select(all, keep_count(static_cast<std::size_t>(all.size()), 0.5)));
            std::vector<rm::detail::Declaration> decl(static_cast<std::size_t>(size()));
            for (std::size_t r = 0; r < decl.size(); ++r) {
              decl[r].n = 2 * r + 1;
              decl[r].m = 3;
            }
            rm::GlobalSmallLossSelector<T> h(MPI_COMM_WORLD);
            h.use_sizes("test", decl, false);
            CHECK(h.global_size() == static_cast<std::size_t>(size() * size()));
            CHECK(h.global_offset() == static_cast<std::size_t>(rank() * rank()));
            h.use_sizes("test", decl, true);
            CHECK(h.global_size() == static_cast<std::size_t>(3 * size()));
          });
  add_row({s + "select_gathered/2"}, "keep larger than the global batch rejected naming keep", [] {
    rm::GlobalSmallLossSelector<T> g(MPI_COMM_WORLD);
    const V l = V::Ones(B);
    g.exchange_sizes("test", B, 0.5, true);
    g.gather(l.data(), B);
    rejects({"keep"}, [&] { (void)g.select_gathered(B, g.global_size() + 1); });
  });
}

struct Shard {
  V l1 = normal<T>(B, 1, 1 + 10 * static_cast<std::uint64_t>(rank()));
  V l2 = normal<T>(B, 1, 2 + 10 * static_cast<std::uint64_t>(rank()));
  M g1 = normal<T>(C, B, 3), g2 = normal<T>(C, B, 4);
  M z1 = normal<T>(C, B, 5 + 10 * static_cast<std::uint64_t>(rank()));
  M z2 = normal<T>(C, B, 6 + 10 * static_cast<std::uint64_t>(rank()));
  Labels y = labels(B, C);
};

void co_teaching_rows() {
  const std::string c = "regula::mpi::GlobalCoTeaching::";
  add_row({c + "GlobalCoTeaching/1", c + "exchange/5", c + "selected_by_first/0",
           c + "selected_by_second/0"},
          "one rank equals CoTeaching on its batch", [] {
            if (size() != 1) {
              SUCCEED("checked against the single process on one rank");
              return;
            }
            Shard s, r;
            rm::GlobalCoTeaching<T> g(MPI_COMM_WORLD);
            CoTeaching<T> ref;
            const auto a = g.exchange(s.l1, s.l2, 0.25, s.g1, s.g2);
            const auto b = ref.exchange(r.l1, r.l2, 0.25, r.g1, r.g2);
            CHECK(a.loss1 == b.loss1);
            CHECK(g.selected_by_first() == ref.selected_by_first());
            CHECK(g.selected_by_second() == ref.selected_by_second());
            CHECK(same(s.g1, r.g1));
          });
  add_row(
      {c + "exchange/5"}, "loss2 of another length on every rank rejected naming loss2",
      [] {
        Shard s;
        rm::GlobalCoTeaching<T> g(MPI_COMM_WORLD);
        const V l2(B + 1);
        rejects({"loss2"}, [&] { (void)g.exchange(s.l1, l2, 0.25, s.g1, s.g2); });
      },
      "[known:12]");
  add_row(
      {c + "exchange/5"}, "forget_rate = 2 on rank 0 only: rank 0 names forget_rate",
      [] {
        Shard s;
        rm::GlobalCoTeaching<T> g(MPI_COMM_WORLD);
        const bool bad = rank() == 0;
        every_rank_throws(
            bad, "forget_rate", [&] { (void)g.exchange(s.l1, s.l2, bad ? 2.0 : 0.25, s.g1, s.g2); },
            "[0, 1]");
      },
      "[known:12]");
  add_row({c + "exchange/5"}, "grad2 is grad1 itself rejected", [] {
    Shard s;
    rm::GlobalCoTeaching<T> g(MPI_COMM_WORLD);
    rejects({"grad2"}, [&] { (void)g.exchange(s.l1, s.l2, 0.25, s.g1, s.g1); });
  });
  const std::string p = "regula::mpi::GlobalCoTeachingPlus::";
  add_row({p + "GlobalCoTeachingPlus/2"}, "init_epochs = -1 rejected", [] {
    rejects({"init_epochs"},
            [] { rm::GlobalCoTeachingPlus<T> g(MPI_COMM_WORLD, CoTeachingPlusOptions{-1}); });
  });
  add_row({p + "exchange/8", p + "disagreement/0"}, "one rank equals CoTeachingPlus on its batch",
          [] {
            if (size() != 1) {
              SUCCEED("checked against the single process on one rank");
              return;
            }
            Shard s, r;
            rm::GlobalCoTeachingPlus<T> g(MPI_COMM_WORLD);
            CoTeachingPlus<T> ref;
            const auto a = g.exchange(s.z1, s.z2, s.l1, s.l2, 0.25, 5, s.g1, s.g2);
            const auto b = ref.exchange(r.z1, r.z2, r.l1, r.l2, 0.25, 5, r.g1, r.g2);
            CHECK(g.disagreement() == ref.disagreement());
            CHECK(a.loss1 == b.loss1);
            CHECK(same(s.g1, r.g1));
          });
  add_row(
      {p + "exchange/8"}, "logits2 of another shape on every rank rejected naming logits2",
      [] {
        Shard s;
        rm::GlobalCoTeachingPlus<T> g(MPI_COMM_WORLD);
        const M z2 = normal<T>(C + 1, B);
        rejects({"logits2"}, [&] { (void)g.exchange(s.z1, z2, s.l1, s.l2, 0.25, 5, s.g1, s.g2); });
      },
      "[known:12]");
  add_row(
      {p + "exchange/8"}, "ranks on both sides of init_epochs: every rank throws or all agree",
      [] {
        Shard s;
        rm::GlobalCoTeachingPlus<T> g(MPI_COMM_WORLD, CoTeachingPlusOptions{2});
        const double epoch = rank() == 0 ? 1.0 : 3.0;
        if (size() == 1) {
          SUCCEED("needs two ranks");
          return;
        }
        every_rank_throws(rank() == 0, "epoch", [&] {
          (void)g.exchange(s.z1, s.z2, s.l1, s.l2, 0.25, epoch, s.g1, s.g2);
        });
      },
      "[known:12]");
}

void jocor_rows() {
  const std::string j = "regula::mpi::GlobalJoCoR::";
  add_row({j + "GlobalJoCoR/2"}, "lambda = 2 rejected", [] {
    rejects({"lambda"}, [] { rm::GlobalJoCoR<T> g(MPI_COMM_WORLD, JoCoROptions{2.0}); });
  });
  add_row({j + "step/6", j + "selected/0"}, "one rank equals JoCoR::step", [] {
    if (size() != 1) {
      SUCCEED("checked against the single process on one rank");
      return;
    }
    Shard s, r;
    rm::GlobalJoCoR<T> g(MPI_COMM_WORLD);
    JoCoR<T> ref;
    const auto a = g.step(s.z1, s.z2, s.y, 0.25, s.g1, s.g2);
    const auto b = ref.step(r.z1, r.z2, r.y, 0.25, r.g1, r.g2);
    CHECK(a.loss == b.loss);
    CHECK(g.selected() == ref.selected());
    CHECK(same(s.g1, r.g1));
  });
  add_row({j + "step/6"}, "a label out of range on the last rank: that rank names labels", [] {
    Shard s;
    const bool bad = rank() == size() - 1;
    if (bad) s.y[1] = C;
    rm::GlobalJoCoR<T> g(MPI_COMM_WORLD);
    every_rank_throws(bad, "labels", [&] { (void)g.step(s.z1, s.z2, s.y, 0.25, s.g1, s.g2); });
  });
  add_row(
      {j + "step/6"}, "logits of another class count on rank 0 only rejected on every rank",
      [] {
        Shard s;
        if (size() == 1) {
          SUCCEED("needs two ranks");
          return;
        }
        const Index c = rank() == 0 ? C + 1 : C;
        const M z1 = normal<T>(c, B), z2 = normal<T>(c, B);
        M g1(c, B), g2(c, B);
        rm::GlobalJoCoR<T> g(MPI_COMM_WORLD);
        CHECK_THROWS_AS(g.step(z1, z2, s.y, 0.25, g1, g2), invalid_argument);
      },
      "[known:12]");
}

void sinkhorn_rows() {
  const std::string k = "regula::mpi::GlobalSinkhornKD::";
  add_row({k + "GlobalSinkhornKD/2", k + "forward_backward/3", k + "workspace/0"},
          "one rank equals sinkhorn_kd on its batch", [] {
            if (size() != 1) {
              SUCCEED("checked against the single process on one rank");
              return;
            }
            Shard s;
            rm::GlobalSinkhornKD<T> g(MPI_COMM_WORLD);
            M d(C, B), r(C, B);
            const T a = g.forward_backward(s.z1, s.z2, d);
            const T b = sinkhorn_kd(s.z1, s.z2, r);
            CHECK(a == b);
            CHECK(same(d, r));
            CHECK(g.workspace().cost().rows() == B);
          });
  add_row(
      {k + "forward_backward/3"},
      "a teacher of another shape on every rank rejected naming teacher",
      [] {
        Shard s;
        rm::GlobalSinkhornKD<T> g(MPI_COMM_WORLD);
        M d(C, B);
        rejects({"teacher"}, [&] { (void)g.forward_backward(s.z1, normal<T>(C, B + 1), d); });
      },
      "[known:12]");
  add_row(
      {k + "forward_backward/3"}, "iterations = 0 on the last rank only: every rank throws",
      [] {
        Shard s;
        const bool bad = rank() == size() - 1;
        rm::GlobalSinkhornKD<T> g(MPI_COMM_WORLD,
                                  SinkhornKDOptions{}.with_iterations(bad ? 0 : 20));
        M d(C, B);
        every_rank_throws(bad, "iterations", [&] { (void)g.forward_backward(s.z1, s.z2, d); });
      },
      "[known:12]");
  add_row({k + "forward_backward/3"}, "dstudent overlaps the student partly rejected", [] {
    Shard s;
    rm::GlobalSinkhornKD<T> g(MPI_COMM_WORLD);
    Overlap<T> o(C, B, 1);
    rejects({"dstudent"}, [&] { (void)g.forward_backward(o.a, s.z2, o.b); });
  });
}

void register_rows() {
  covers("mpi");
  add_row({"regula::mpi::rank_stream/2"},
          "ranks get disjoint subsequences; the communicator overload is the rank's", [] {
            const Stream base(7, 3, 11);
            CHECK(rm::rank_stream(base, std::uint64_t{2}) ==
                  Stream(7, 3 + (std::uint64_t{2} << 32), 11));
            CHECK(rm::rank_stream(base, MPI_COMM_WORLD) ==
                  rm::rank_stream(base, static_cast<std::uint64_t>(rank())));
          });
  selector_rows();
  co_teaching_rows();
  jocor_rows();
  sinkhorn_rows();
}

const Rows rows(register_rows);

}  // namespace
}  // namespace regula::sweep
