/// @file
/// Data-parallel training with MPI: rank-aware streams, and small-loss selection (Co-teaching,
/// Co-teaching+) over the global batch that keeps exactly the samples one process would keep
/// on the concatenated batch.
///
/// Compiled only by programs that include it and link MPI (CMake: `REGULA_WITH_MPI`, target
/// `MPI::MPI_CXX`). The global batch is the concatenation of the ranks' shards in rank order:
/// sample i of rank r has global index offset_r + i, offset_r = n_0 + … + n_{r−1}. Shards may
/// differ in size and may be empty.
#ifndef REGULA_INTEGRATIONS_MPI_HPP
#define REGULA_INTEGRATIONS_MPI_HPP

#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <mpi.h>

#include "regula/core/columns.hpp"
#include "regula/core/error.hpp"
#include "regula/core/matrix.hpp"
#include "regula/core/stream.hpp"
#include "regula/losses/kd_common.hpp"
#include "regula/losses/sinkhorn_kd.hpp"
#include "regula/selection/co_teaching.hpp"
#include "regula/selection/jocor.hpp"
#include "regula/selection/small_loss.hpp"

namespace regula::mpi {

/// The stream rank `rank` uses: same seed and offset, subsequence `base.subsequence() + rank·2³²`.
/// Ranks never share a block as long as the base subsequences in use stay below 2³² (for
/// example one per layer). No communication; to reproduce rank r's masks in one process, call
/// `rank_stream(base, r)` there.
[[nodiscard]] constexpr Stream rank_stream(const Stream& base, std::uint64_t rank) noexcept {
  return Stream(base.seed(), base.subsequence() + (rank << 32), base.offset());
}

/// The stream of the calling process's rank in `comm`.
[[nodiscard]] inline Stream rank_stream(const Stream& base, MPI_Comm comm) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  return rank_stream(base, static_cast<std::uint64_t>(rank));
}

namespace detail {

template <class T>
MPI_Datatype datatype() noexcept {
  return std::is_same_v<T, float> ? MPI_FLOAT : MPI_DOUBLE;
}

/// The most parameters one collective agrees across ranks.
inline constexpr int max_agreed = 6;

/// What every rank declares before a collective, so that a mistake on one rank becomes an error
/// on every rank instead of a hang, and so that no rank computes with other parameters.
struct Declaration {
  std::uint64_t n;            // shard size (or size of the subset a selection runs on)
  std::uint64_t m;            // a second size some collectives need (Co-teaching+: |D|)
  std::int32_t ok;            // 0 when the local arguments are invalid
  std::int32_t count;         // parameters in use in `values`
  double values[max_agreed];  // must be the same on every rank, bit for bit
};

static_assert(sizeof(Declaration) == 72, "docs/distributed.md states the declaration's size");

/// A parameter that must be the same on every rank, and its name for the error message.
struct Agreed {
  const char* name;
  double value;
};

/// A double printed with enough digits that two different values never print alike.
inline std::string exact(double v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

/// The error the local checks raise, or null. A rank must tell the others whether its
/// arguments are valid before it throws, or they would wait for it in the next collective.
template <class F>
std::exception_ptr local_error(F&& checks) {
#if REGULA_HAS_EXCEPTIONS
  try {
    checks();
  } catch (...) {
    return std::current_exception();
  }
#else
  checks();  // REGULA_THROW aborts the process, and mpiexec ends the job: no rank hangs either
#endif
  return nullptr;
}

/// Gathers every rank's declaration into `all` (rank order). If this rank's own arguments are
/// invalid it returns at once, so that the caller throws its own, specific error. Otherwise it
/// throws on every rank if another rank's arguments are invalid, if the ranks declare different
/// parameter sets (different calls), or if a parameter differs from rank 0's.
inline void agree(MPI_Comm comm, const char* who, bool ok, std::uint64_t n, std::uint64_t m,
                  std::initializer_list<Agreed> params, std::vector<Declaration>& all) {
  REGULA_ASSERT(params.size() <= static_cast<std::size_t>(max_agreed));
  Declaration mine{};
  mine.n = n;
  mine.m = m;
  mine.ok = ok ? 1 : 0;
  mine.count = static_cast<std::int32_t>(params.size());
  int i = 0;
  for (const Agreed& a : params) mine.values[i++] = a.value;
  int size = 1;
  MPI_Comm_size(comm, &size);
  all.resize(static_cast<std::size_t>(size));
  MPI_Allgather(&mine, static_cast<int>(sizeof(Declaration)), MPI_BYTE, all.data(),
                static_cast<int>(sizeof(Declaration)), MPI_BYTE, comm);
  if (!ok) return;
  for (std::size_t r = 0; r < all.size(); ++r) {
    REGULA_EXPECTS(all[r].ok != 0, who, "rank ", r,
                   " passed invalid arguments (its own error says which)");
  }
  for (std::size_t r = 0; r < all.size(); ++r) {
    REGULA_EXPECTS(all[r].count == mine.count, who, "every rank must make the same call; rank ", r,
                   " declares ", all[r].count, " parameters, this rank ", mine.count);
  }
  int k = 0;
  for (const Agreed& a : params) {
    for (std::size_t r = 1; r < all.size(); ++r) {
      REGULA_EXPECTS(std::memcmp(&all[r].values[k], &all[0].values[k], sizeof(double)) == 0, who,
                     a.name, " must be the same on every rank; rank 0 has ",
                     exact(all[0].values[k]), ", rank ", r, " has ", exact(all[r].values[k]));
    }
    ++k;
  }
}

/// Throws unless r ∈ [0, 1].
inline void check_forget_rate(const char* who, double r) {
  REGULA_EXPECTS(r >= 0.0 && r <= 1.0, who, "forget_rate must be in [0, 1], got ", r);
}

}  // namespace detail

/// Small-loss selection over the global batch. Each rank passes the losses of its shard and gets
/// back the local indices of its selected samples; the union over ranks is exactly what
/// SmallLossSelector selects on the concatenated batch (same (loss, global index) order, ties to
/// the lower global index, NaN last), bit for bit.
///
/// Cost: one all-gather of the declarations and one of the losses, so each rank sends its n_r
/// losses and receives all N (4 or 8 bytes each) — proportional to the batch, independent of the
/// model — then selects in O(N) on average. Collective: every rank of `comm` must call it.
template <class T>
class GlobalSmallLossSelector {
  static_assert(is_scalar_v<T>,
                "regula::mpi::GlobalSmallLossSelector<T>: T must be float or double");

 public:
  /// A selector over the ranks of `comm` (every rank calls it collectively).
  explicit GlobalSmallLossSelector(MPI_Comm comm) noexcept : comm_(comm) {}

  /// Keeps keep_count(N, forget_rate) samples of the global batch (N = Σ n_r), where
  /// forget_rate must be the same on every rank. Returns this rank's selected local indices,
  /// ascending.
  /// @throws regula::invalid_argument on every rank if any rank's forget_rate is outside [0, 1]
  ///         (that rank names its own value) or the ranks' rates differ.
  const std::vector<Index>& select(const T* losses, std::size_t n, double forget_rate) {
    constexpr const char* who = "regula::mpi::GlobalSmallLossSelector::select";
    const bool ok = forget_rate >= 0.0 && forget_rate <= 1.0;
    exchange_sizes(who, n, forget_rate, ok);
    detail::check_forget_rate(who, forget_rate);
    gather(losses, n);
    return select_gathered(n, keep_count(total_, forget_rate));
  }

  /// As above for a vector of per-sample losses.
  const std::vector<Index>& select(const VectorCRef<T>& losses, double forget_rate) {
    return select(losses.data(), static_cast<std::size_t>(losses.size()), forget_rate);
  }

  /// N, the size of the global batch in the last call.
  [[nodiscard]] std::size_t global_size() const noexcept { return total_; }
  /// This rank's first global index in the last call.
  [[nodiscard]] std::size_t global_offset() const noexcept { return offset_; }
  /// How many samples were kept over all ranks in the last call.
  [[nodiscard]] std::size_t global_kept() const noexcept { return kept_; }
  /// The local indices selected by the last call.
  [[nodiscard]] const std::vector<Index>& selected() const noexcept { return local_; }
  /// The global indices selected by the last call over all ranks, ascending.
  [[nodiscard]] const std::vector<Index>& global_selected() const noexcept {
    return selector_.selected();
  }
  /// The N losses of the global batch gathered by the last call, in global index order.
  [[nodiscard]] const std::vector<T>& gathered() const noexcept { return all_; }
  /// Bytes this rank sent in the last call (declaration and losses).
  [[nodiscard]] std::size_t bytes_sent() const noexcept { return bytes_sent_; }

  /// Collective building block: declares the shard and the rate. If `ok` is false it returns
  /// (the caller throws its own error); otherwise it throws on every rank if another rank's
  /// arguments are invalid or the rates differ.
  void exchange_sizes(const char* who, std::size_t n, double forget_rate, bool ok) {
    detail::agree(comm_, who, ok, n, 0, {{"forget_rate", forget_rate}}, declarations_);
    if (ok) use_sizes(who, declarations_, false);
  }

  /// Building block without communication: the shard sizes of every rank, from declarations
  /// gathered by detail::agree (`second`: their second size, m, instead of n).
  void use_sizes(const char* who, const std::vector<detail::Declaration>& all, bool second) {
    int rank = 0;
    MPI_Comm_rank(comm_, &rank);
    counts_.resize(all.size());
    displs_.resize(all.size());
    total_ = 0;
    for (std::size_t r = 0; r < all.size(); ++r) {
      const std::uint64_t n = second ? all[r].m : all[r].n;
      REGULA_EXPECTS(n < (std::uint64_t{1} << 31) && total_ + n < (std::uint64_t{1} << 31), who,
                     "the global batch must have fewer than 2^31 samples");
      counts_[r] = static_cast<int>(n);
      displs_[r] = static_cast<int>(total_);
      total_ += n;
    }
    offset_ = static_cast<std::size_t>(displs_[static_cast<std::size_t>(rank)]);
  }

  /// Takes the shard sizes of another selector's last exchange_sizes (no communication).
  void share_sizes(const GlobalSmallLossSelector& other) {
    counts_ = other.counts_;
    displs_ = other.displs_;
    total_ = other.total_;
    offset_ = other.offset_;
  }

  /// Collective building block: gathers every rank's losses (after exchange_sizes).
  void gather(const T* losses, std::size_t n) {
    all_.resize(total_);
    MPI_Allgatherv(n == 0 ? nullptr : losses, static_cast<int>(n), detail::datatype<T>(),
                   all_.data(), counts_.data(), displs_.data(), detail::datatype<T>(), comm_);
    bytes_sent_ = sizeof(detail::Declaration) + n * sizeof(T);
  }

  /// Selects `keep` of the gathered global batch and returns this rank's share, ascending.
  const std::vector<Index>& select_gathered(std::size_t n, std::size_t keep) {
    const std::vector<Index>& global = selector_.select(all_.data(), total_, keep);
    kept_ = global.size();
    local_.clear();
    const auto lo = static_cast<Index>(offset_);
    const auto hi = static_cast<Index>(offset_ + n);
    for (const Index g : global) {
      if (g >= lo && g < hi) local_.push_back(g - lo);
    }
    return local_;
  }

 private:
  MPI_Comm comm_;
  SmallLossSelector<T> selector_;
  std::vector<T> all_;
  std::vector<int> counts_, displs_;
  std::vector<detail::Declaration> declarations_;
  std::vector<Index> local_;
  std::size_t total_ = 0, offset_ = 0, kept_ = 0, bytes_sent_ = 0;
};

/// Co-teaching over the global batch: CoTeaching::exchange with both selections global, the
/// training losses averaged over the global selected sets, and each rank's gradients scaled by
/// 1/k with k the global keep count — so the sum over ranks of the local gradients, averaged
/// the usual way by the data-parallel all-reduce (divide by nothing: each rank's columns are its
/// own samples), equals the single-process gradient of the concatenated batch.
template <class T>
class GlobalCoTeaching {
 public:
  /// Co-teaching over the ranks of `comm`.
  explicit GlobalCoTeaching(MPI_Comm comm) : comm_(comm), select1_(comm), select2_(comm) {}

  /// Collective. loss1, loss2, grad1, grad2 are this rank's shard, as for CoTeaching::exchange.
  /// @throws regula::invalid_argument on every rank if any rank's arguments are invalid (that
  ///         rank names its own) or the ranks' forget rates differ.
  CoTeachingResult<T> exchange(const VectorCRef<T>& loss1, const VectorCRef<T>& loss2,
                               double forget_rate, MatrixRef<T> grad1, MatrixRef<T> grad2) {
    constexpr const char* who = "regula::mpi::GlobalCoTeaching::exchange";
    const std::exception_ptr error = detail::local_error([&] {
      regula::detail::check_pair(who, loss1, loss2, grad1, grad2);
      detail::check_forget_rate(who, forget_rate);
    });
    select1_.exchange_sizes(who, static_cast<std::size_t>(loss1.size()), forget_rate, !error);
    if (error) std::rethrow_exception(error);
    return run(loss1, loss2, forget_rate, grad1, grad2);
  }

  /// S¹ and S² restricted to this rank (local indices).
  [[nodiscard]] const std::vector<Index>& selected_by_first() const noexcept {
    return select1_.selected();
  }
  /// S² restricted to this rank (local indices).
  [[nodiscard]] const std::vector<Index>& selected_by_second() const noexcept {
    return select2_.selected();
  }

 protected:
  /// The exchange once select1_ holds the shard sizes of every rank.
  CoTeachingResult<T> run(const VectorCRef<T>& loss1, const VectorCRef<T>& loss2,
                          double forget_rate, MatrixRef<T>& grad1, MatrixRef<T>& grad2) {
    const auto n = static_cast<std::size_t>(loss1.size());
    const std::size_t keep = keep_count(select1_.global_size(), forget_rate);
    select1_.gather(loss1.data(), n);
    select1_.select_gathered(n, keep);
    select2_.share_sizes(select1_);
    select2_.gather(loss2.data(), n);
    select2_.select_gathered(n, keep);
    return finish(loss1.data(), loss2.data(), select1_.global_kept(), select2_.global_kept(),
                  select2_.selected(), select1_.selected(), grad1, grad2);
  }

  /// Rewrites the gradients with the global divisors and all-reduces the loss sums.
  CoTeachingResult<T> finish(const T* loss1, const T* loss2, std::size_t k1, std::size_t k2,
                             const std::vector<Index>& rows1, const std::vector<Index>& rows2,
                             MatrixRef<T>& grad1, MatrixRef<T>& grad2) {
    // Net 1 trains on rows1 (selected by net 2), with k2 samples globally; net 2 on rows2.
    double sums[2] = {
        regula::detail::keep_selected(rows1, loss1, grad1, mark_, static_cast<double>(k2)),
        regula::detail::keep_selected(rows2, loss2, grad2, mark_, static_cast<double>(k1))};
    MPI_Allreduce(MPI_IN_PLACE, sums, 2, MPI_DOUBLE, MPI_SUM, comm_);
    CoTeachingResult<T> r;
    r.kept1 = k2;
    r.kept2 = k1;
    r.loss1 = k2 == 0 ? T(0) : static_cast<T>(sums[0] / static_cast<double>(k2));
    r.loss2 = k1 == 0 ? T(0) : static_cast<T>(sums[1] / static_cast<double>(k1));
    return r;
  }

  /// The communicator of the ranks.
  MPI_Comm comm_;
  GlobalSmallLossSelector<T> select1_;  ///< the first network's global selection
  GlobalSmallLossSelector<T> select2_;  ///< the second network's
  /// Scratch marks of the selected samples, kept between steps (no allocation once sized).
  std::vector<std::uint8_t> mark_;
};

/// Co-teaching+ over the global batch: the disagreement set is the union of the ranks' local
/// disagreement sets, taken in global index order, and the small-loss selection inside it is
/// global, so the result equals CoTeachingPlus on the concatenated batch. The ranks agree on
/// forget_rate, epoch, the options and the class count before anything else, so they all take
/// the same branch around init_epochs.
template <class T>
class GlobalCoTeachingPlus : private GlobalCoTeaching<T> {
  using Base = GlobalCoTeaching<T>;

 public:
  /// @throws regula::invalid_argument if init_epochs < 0 or NaN.
  GlobalCoTeachingPlus(MPI_Comm comm, CoTeachingPlusOptions options = {})
      : Base(comm), options_(options) {
    regula::detail::check_init_epochs("regula::mpi::GlobalCoTeachingPlus", options.init_epochs);
  }

  /// Collective; arguments as CoTeachingPlus::exchange for this rank's shard (C × n_r logits;
  /// an empty shard is C × 0).
  /// @throws regula::invalid_argument on every rank if any rank's arguments are invalid (that
  ///         rank names its own), or if forget_rate, epoch, the options or the class count
  ///         differ between ranks.
  CoTeachingResult<T> exchange(const MatrixCRef<T>& logits1, const MatrixCRef<T>& logits2,
                               const VectorCRef<T>& loss1, const VectorCRef<T>& loss2,
                               double forget_rate, double epoch, MatrixRef<T> grad1,
                               MatrixRef<T> grad2) {
    constexpr const char* who = "regula::mpi::GlobalCoTeachingPlus::exchange";
    const std::exception_ptr error = detail::local_error([&] {
      regula::detail::check_plus_exchange(who, logits1, logits2, loss1, loss2, epoch, grad1, grad2);
      detail::check_forget_rate(who, forget_rate);
    });
    // Local disagreement first, so that its size goes into the one declaration.
    disagree_.clear();
    if (!error) {
      for (Index j = 0; j < loss1.size(); ++j) {
        if (regula::detail::argmax_nan_max(logits1.col(j)) !=
            regula::detail::argmax_nan_max(logits2.col(j))) {
          disagree_.push_back(j);
        }
      }
    }
    const auto n = static_cast<std::uint64_t>(loss1.size());
    detail::agree(this->comm_, who, !error, n, disagree_.size(),
                  {{"forget_rate", forget_rate},
                   {"epoch", epoch},
                   {"init_epochs", options_.init_epochs},
                   {"options.empty", static_cast<double>(options_.empty)},
                   {"the number of classes", static_cast<double>(logits1.rows())}},
                  declarations_);
    if (error) std::rethrow_exception(error);
    if (epoch < options_.init_epochs) {
      disagree_.clear();
      this->select1_.use_sizes(who, declarations_, false);
      return Base::run(loss1, loss2, forget_rate, grad1, grad2);
    }
    this->select1_.use_sizes(who, declarations_, true);
    const std::size_t global_d = this->select1_.global_size();
    if (global_d == 0) {
      if (options_.empty == EmptyDisagreement::skip) {
        grad1.setZero();
        grad2.setZero();
        return {};
      }
      all_.resize(static_cast<std::size_t>(loss1.size()));
      for (Index j = 0; j < loss1.size(); ++j) all_[static_cast<std::size_t>(j)] = j;
      std::uint64_t total = 0;
      for (const detail::Declaration& d : declarations_) total += d.n;
      return this->finish(loss1.data(), loss2.data(), total, total, all_, all_, grad1, grad2);
    }
    const std::size_t keep = keep_count(global_d, forget_rate);
    pick(this->select1_, loss1.data(), keep, picked1_);
    this->select2_.share_sizes(this->select1_);
    pick(this->select2_, loss2.data(), keep, picked2_);
    return this->finish(loss1.data(), loss2.data(), this->select1_.global_kept(),
                        this->select2_.global_kept(), picked2_, picked1_, grad1, grad2);
  }

  /// This rank's part of the disagreement set (local indices; empty during the initial epochs).
  [[nodiscard]] const std::vector<Index>& disagreement() const noexcept { return disagree_; }

 private:
  void pick(GlobalSmallLossSelector<T>& sel, const T* loss, std::size_t keep,
            std::vector<Index>& out) {
    compact_.resize(disagree_.size());
    for (std::size_t j = 0; j < disagree_.size(); ++j) compact_[j] = loss[disagree_[j]];
    sel.gather(compact_.data(), compact_.size());
    const std::vector<Index>& local = sel.select_gathered(compact_.size(), keep);
    out.resize(local.size());
    for (std::size_t j = 0; j < local.size(); ++j)
      out[j] = disagree_[static_cast<std::size_t>(local[j])];
  }

  CoTeachingPlusOptions options_;
  std::vector<detail::Declaration> declarations_;
  std::vector<Index> disagree_, picked1_, picked2_, all_;
  std::vector<T> compact_;
};

/// JoCoR over the global batch: each rank computes its samples' joint losses, the k smallest
/// over all ranks are selected (keep_count(N, r), ties to the lower global index, NaN last), and
/// each rank's gradients are those of the global mean joint loss for its own columns. A
/// sample's joint loss does not depend on where its column sits, so the selection, the
/// gradients and the loss are bitwise those of JoCoR::step on the concatenated batch (the loss
/// is summed from the gathered losses in global index order, as step sums them). Collective.
template <class T>
class GlobalJoCoR {
 public:
  /// @throws regula::invalid_argument if λ ∉ [0, 1].
  GlobalJoCoR(MPI_Comm comm, JoCoROptions options = {})
      : comm_(comm), jocor_(options), select_(comm) {}

  /// Arguments as JoCoR::step for this rank's shard (C × n_r logits; an empty shard is C × 0).
  /// @throws regula::invalid_argument on every rank if any rank's arguments are invalid (that
  ///         rank names its own), or if forget_rate, λ or the class count differ between ranks.
  JoCoRResult<T> step(const MatrixCRef<T>& logits1, const MatrixCRef<T>& logits2,
                      const LabelsCRef& labels, double forget_rate, MatrixRef<T> grad1,
                      MatrixRef<T> grad2) {
    constexpr const char* who = "regula::mpi::GlobalJoCoR::step";
    const std::exception_ptr error = detail::local_error([&] {
      regula::detail::check_jocor_inputs<T>(who, logits1, logits2, labels, true);
      regula::detail::check_jocor_outputs<T>(who, logits1, logits2, grad1, grad2);
      detail::check_forget_rate(who, forget_rate);
    });
    const auto n = static_cast<std::size_t>(logits1.cols());
    detail::agree(comm_, who, !error, n, 0,
                  {{"forget_rate", forget_rate},
                   {"lambda", jocor_.options().lambda},
                   {"the number of classes", static_cast<double>(logits1.rows())}},
                  declarations_);
    if (error) std::rethrow_exception(error);
    select_.use_sizes(who, declarations_, false);
    losses_.resize(static_cast<Index>(n));
    // per_sample and gradients check a subset of the above: they do not throw here.
    if (n > 0) jocor_.per_sample(logits1, logits2, labels, losses_);
    select_.gather(losses_.data(), n);
    const std::vector<Index>& mine =
        select_.select_gathered(n, keep_count(select_.global_size(), forget_rate));
    JoCoRResult<T> r;
    r.kept = select_.global_kept();
    const auto k = static_cast<double>(r.kept);
    if (n > 0) (void)jocor_.gradients(mine, k, labels, grad1, grad2);
    double sum = 0.0;
    for (const Index g : select_.global_selected()) {
      sum += static_cast<double>(select_.gathered()[static_cast<std::size_t>(g)]);
    }
    r.loss = r.kept == 0 ? T(0) : static_cast<T>(sum / k);
    return r;
  }

  /// This rank's selected samples (local indices).
  [[nodiscard]] const std::vector<Index>& selected() const noexcept { return select_.selected(); }

 private:
  MPI_Comm comm_;
  JoCoR<T> jocor_;
  GlobalSmallLossSelector<T> select_;
  std::vector<detail::Declaration> declarations_;
  Vector<T> losses_;
};

/// Batch-wise Sinkhorn KD (sinkhorn_kd) over the global batch: the B × B plan couples samples of
/// every rank, so each rank all-gathers the student and teacher logits (2·C·N values, the batch
/// times the classes — not the model), solves the global problem, and keeps the gradient of its
/// own columns. The loss is the global loss on every rank, and each rank's gradient equals the
/// single-process gradient's columns of its samples, so summing the model gradients over ranks
/// gives the single-process gradient. The ranks agree on the class count and on every option
/// (temperature, ε, iterations, λ, grad_mode) first, so they solve the same problem. Collective.
template <class T>
class GlobalSinkhornKD {
  static_assert(is_scalar_v<T>, "regula::mpi::GlobalSinkhornKD<T>: T must be float or double");

 public:
  /// Sinkhorn KD over the ranks of `comm` with `options` (agreed across ranks at each call).
  explicit GlobalSinkhornKD(MPI_Comm comm, SinkhornKDOptions options = {})
      : comm_(comm), options_(std::move(options)) {}

  /// Loss over the global batch; `dstudent` (C × n_r) receives this rank's columns of the gradient.
  /// @throws regula::invalid_argument on every rank if any rank's shapes do not match or its
  ///         options are out of range (that rank names its own error), or if the class count or
  ///         an option differs between ranks; the loss's own checks apply to the global batch
  ///         (the same on every rank, so they throw on every rank or on none).
  T forward_backward(const MatrixCRef<T>& student, const MatrixCRef<T>& teacher,
                     MatrixRef<T> dstudent) {
    constexpr const char* who = "regula::mpi::GlobalSinkhornKD::forward_backward";
    const std::exception_ptr error = detail::local_error([&] {
      regula::detail::check_same_shape(who, "teacher", teacher, "student", student);
      regula::detail::check_same_shape(who, "dstudent", dstudent, "student", student);
      regula::detail::check_disjoint(who, "student", student, "dstudent", dstudent);
      regula::detail::check_disjoint(who, "teacher", teacher, "dstudent", dstudent);
      regula::detail::check_positive(who, "temperature", options_.temperature);
      regula::detail::check_positive(who, "epsilon", options_.epsilon);
      REGULA_EXPECTS(options_.iterations >= 1, who, "iterations must be >= 1, got ",
                     options_.iterations);
      REGULA_EXPECTS(std::isfinite(options_.lambda), who, "lambda must be finite, got ",
                     options_.lambda);
    });
    const auto n = static_cast<std::size_t>(student.cols());
    detail::agree(comm_, who, !error, n, 0,
                  {{"the number of classes", static_cast<double>(student.rows())},
                   {"temperature", options_.temperature},
                   {"epsilon", options_.epsilon},
                   {"iterations", static_cast<double>(options_.iterations)},
                   {"lambda", options_.lambda},
                   {"grad_mode", static_cast<double>(options_.grad_mode)}},
                  declarations_);
    if (error) std::rethrow_exception(error);
    sizes_.use_sizes(who, declarations_, false);
    const Index c = student.rows();
    const auto total = static_cast<Index>(sizes_.global_size());
    z_.resize(c, total);
    v_.resize(c, total);
    dz_.resize(c, total);
    gather(student, z_, c);
    gather(teacher, v_, c);
    const T loss = sinkhorn_kd<T>(z_, v_, dz_, workspace_, options_);
    dstudent = dz_.middleCols(static_cast<Index>(sizes_.global_offset()), static_cast<Index>(n));
    return loss;
  }

  /// The global workspace (cost and plan of the global batch).
  [[nodiscard]] const SinkhornKDWorkspace<T>& workspace() const noexcept { return workspace_; }

 private:
  /// All-gathers C × n_r column blocks into C × N (columns are contiguous samples).
  void gather(const MatrixCRef<T>& local, Matrix<T>& global, Index c) {
    local_.resize(c, local.cols());
    local_ = local;  // contiguous copy: the Ref may have an outer stride
    const std::vector<detail::Declaration>& all = declarations_;
    counts_.resize(all.size());
    displs_.resize(all.size());
    int offset = 0;
    for (std::size_t r = 0; r < all.size(); ++r) {
      // The batch is below 2^31 samples (use_sizes); the values must be too.
      REGULA_EXPECTS(static_cast<double>(all[r].n) * static_cast<double>(c) + offset < 2147483648.0,
                     "regula::mpi::GlobalSinkhornKD::forward_backward",
                     "the global logits must have fewer than 2^31 values");
      counts_[r] = static_cast<int>(all[r].n) * static_cast<int>(c);
      displs_[r] = offset;
      offset += counts_[r];
    }
    MPI_Allgatherv(local_.data(), static_cast<int>(local_.size()), detail::datatype<T>(),
                   global.data(), counts_.data(), displs_.data(), detail::datatype<T>(), comm_);
  }

  MPI_Comm comm_;
  SinkhornKDOptions options_;
  SinkhornKDWorkspace<T> workspace_;
  GlobalSmallLossSelector<T> sizes_{comm_};  // only its layout of the shards is used
  std::vector<detail::Declaration> declarations_;
  Matrix<T> z_, v_, dz_, local_;
  std::vector<int> counts_, displs_;
};

}  // namespace regula::mpi

#endif  // REGULA_INTEGRATIONS_MPI_HPP
