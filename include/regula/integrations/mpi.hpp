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

#include <mpi.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "regula/core/error.hpp"
#include "regula/core/matrix.hpp"
#include "regula/core/stream.hpp"
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

/// What every rank declares before a collective selection, so that a mistake on one rank
/// becomes an error on every rank instead of a hang.
struct Declaration {
  std::uint64_t n;         // shard size
  double forget_rate;      // must agree across ranks (or another parameter that must)
  std::int32_t ok;         // 0 when the local arguments are invalid
  std::int32_t padding;
};

/// Gathers the declarations; throws on every rank if any rank's arguments are invalid or the
/// forget rates differ. Fills counts and displacements (in samples) of the shards.
inline void agree(MPI_Comm comm, const char* who, const Declaration& mine, std::vector<int>& counts,
                  std::vector<int>& displs, std::size_t& total, std::size_t& offset,
                  const char* param = "forget_rate") {
  int size = 1, rank = 0;
  MPI_Comm_size(comm, &size);
  MPI_Comm_rank(comm, &rank);
  std::vector<Declaration> all(static_cast<std::size_t>(size));
  MPI_Allgather(&mine, static_cast<int>(sizeof(Declaration)), MPI_BYTE, all.data(),
                static_cast<int>(sizeof(Declaration)), MPI_BYTE, comm);
  counts.resize(all.size());
  displs.resize(all.size());
  total = 0;
  for (std::size_t r = 0; r < all.size(); ++r) {
    // The failing rank itself returns and throws its own, specific error.
    REGULA_EXPECTS(all[r].ok != 0 || r == static_cast<std::size_t>(rank), who, "rank ", r,
                   " passed invalid arguments (its own error says which)");
    REGULA_EXPECTS(std::memcmp(&all[r].forget_rate, &all[0].forget_rate, sizeof(double)) == 0, who,
                   param, " must be the same on every rank; rank 0 has ", all[0].forget_rate,
                   ", rank ", r, " has ", all[r].forget_rate);
    REGULA_EXPECTS(total + all[r].n < (std::uint64_t{1} << 31), who,
                   "the global batch must have fewer than 2^31 samples");
    counts[r] = static_cast<int>(all[r].n);
    displs[r] = static_cast<int>(total);
    total += all[r].n;
  }
  offset = static_cast<std::size_t>(displs[static_cast<std::size_t>(rank)]);
}

}  // namespace detail

/// Small-loss selection over the global batch. Each rank passes the losses of its shard and gets
/// back the local indices of its selected samples; the union over ranks is exactly what
/// SmallLossSelector selects on the concatenated batch (same (loss, global index) order, ties to
/// the lower global index, NaN last), bit for bit.
///
/// Cost: one all-gather of the shard sizes and one of the losses, so each rank sends its n_r
/// losses and receives all N (4 or 8 bytes each) — proportional to the batch, independent of the
/// model — then selects in O(N) on average. Collective: every rank of `comm` must call it.
template <class T>
class GlobalSmallLossSelector {
  static_assert(is_scalar_v<T>, "regula::mpi::GlobalSmallLossSelector<T>: T must be float or double");

 public:
  explicit GlobalSmallLossSelector(MPI_Comm comm) noexcept : comm_(comm) {}

  /// Keeps keep_count(N, forget_rate) samples of the global batch (N = Σ n_r), where
  /// forget_rate must be the same on every rank. Returns this rank's selected local indices,
  /// ascending.
  /// @throws regula::invalid_argument on every rank if any rank's forget_rate is outside [0, 1]
  ///         or the ranks' rates differ.
  const std::vector<Index>& select(const T* losses, std::size_t n, double forget_rate) {
    constexpr const char* who = "regula::mpi::GlobalSmallLossSelector::select";
    const bool ok = forget_rate >= 0.0 && forget_rate <= 1.0;
    exchange_sizes(who, n, forget_rate, ok);
    REGULA_EXPECTS(ok, who, "forget_rate must be in [0, 1], got ", forget_rate);
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
  /// Bytes this rank sent in the last call (declarations and losses).
  [[nodiscard]] std::size_t bytes_sent() const noexcept { return bytes_sent_; }

  /// Collective building block: declares the shard and the rate (checked across ranks).
  void exchange_sizes(const char* who, std::size_t n, double forget_rate, bool ok) {
    const detail::Declaration mine{n, forget_rate, ok ? 1 : 0, 0};
    detail::agree(comm_, who, mine, counts_, displs_, total_, offset_);
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
  explicit GlobalCoTeaching(MPI_Comm comm) : comm_(comm), select1_(comm), select2_(comm) {}

  /// Collective. loss1, loss2, grad1, grad2 are this rank's shard, as for CoTeaching::exchange.
  /// @throws regula::invalid_argument on every rank if any rank's shapes disagree or the ranks'
  ///         forget rates differ.
  CoTeachingResult<T> exchange(const VectorCRef<T>& loss1, const VectorCRef<T>& loss2,
                               double forget_rate, MatrixRef<T> grad1, MatrixRef<T> grad2) {
    constexpr const char* who = "regula::mpi::GlobalCoTeaching::exchange";
    const bool ok = loss1.size() == loss2.size() && grad1.cols() == loss1.size() &&
                    grad2.cols() == loss2.size() && forget_rate >= 0.0 && forget_rate <= 1.0;
    const auto n = static_cast<std::size_t>(loss1.size());
    select1_.exchange_sizes(who, n, forget_rate, ok);
    if (!ok) {
      regula::detail::check_pair(who, loss1, loss2, grad1, grad2);
      (void)keep_count(0, forget_rate);
    }
    const std::size_t keep = keep_count(select1_.global_size(), forget_rate);
    select1_.gather(loss1.data(), n);
    select1_.select_gathered(n, keep);
    select2_.share_sizes(select1_);
    select2_.gather(loss2.data(), n);
    select2_.select_gathered(n, keep);
    return finish(loss1.data(), loss2.data(), select1_.global_kept(), select2_.global_kept(),
                  select2_.selected(), select1_.selected(), grad1, grad2);
  }

  /// S¹ and S² restricted to this rank (local indices).
  [[nodiscard]] const std::vector<Index>& selected_by_first() const noexcept { return select1_.selected(); }
  [[nodiscard]] const std::vector<Index>& selected_by_second() const noexcept { return select2_.selected(); }

 protected:
  /// Rewrites the gradients with the global divisors and all-reduces the loss sums.
  CoTeachingResult<T> finish(const T* loss1, const T* loss2, std::size_t k1, std::size_t k2,
                             const std::vector<Index>& rows1, const std::vector<Index>& rows2,
                             MatrixRef<T>& grad1, MatrixRef<T>& grad2) {
    // Net 1 trains on rows1 (selected by net 2), with k2 samples globally; net 2 on rows2.
    double sums[2] = {regula::detail::keep_selected(rows1, loss1, grad1, mark_, static_cast<double>(k2)),
                      regula::detail::keep_selected(rows2, loss2, grad2, mark_, static_cast<double>(k1))};
    MPI_Allreduce(MPI_IN_PLACE, sums, 2, MPI_DOUBLE, MPI_SUM, comm_);
    CoTeachingResult<T> r;
    r.kept1 = k2;
    r.kept2 = k1;
    r.loss1 = k2 == 0 ? T(0) : static_cast<T>(sums[0] / static_cast<double>(k2));
    r.loss2 = k1 == 0 ? T(0) : static_cast<T>(sums[1] / static_cast<double>(k1));
    return r;
  }

  MPI_Comm comm_;
  GlobalSmallLossSelector<T> select1_, select2_;
  std::vector<std::uint8_t> mark_;
};

/// Co-teaching+ over the global batch: the disagreement set is the union of the ranks' local
/// disagreement sets, taken in global index order, and the small-loss selection inside it is
/// global, so the result equals CoTeachingPlus on the concatenated batch.
template <class T>
class GlobalCoTeachingPlus : private GlobalCoTeaching<T> {
  using Base = GlobalCoTeaching<T>;

 public:
  GlobalCoTeachingPlus(MPI_Comm comm, CoTeachingPlusOptions options = {})
      : Base(comm), options_(options) {
    REGULA_EXPECTS(options.init_epochs >= 0.0, "regula::mpi::GlobalCoTeachingPlus",
                   "init_epochs must be >= 0, got ", options.init_epochs);
  }

  /// Collective; arguments as CoTeachingPlus::exchange for this rank's shard.
  CoTeachingResult<T> exchange(const MatrixCRef<T>& logits1, const MatrixCRef<T>& logits2,
                               const VectorCRef<T>& loss1, const VectorCRef<T>& loss2,
                               double forget_rate, double epoch, MatrixRef<T> grad1,
                               MatrixRef<T> grad2) {
    constexpr const char* who = "regula::mpi::GlobalCoTeachingPlus::exchange";
    if (epoch < options_.init_epochs) return Base::exchange(loss1, loss2, forget_rate, grad1, grad2);
    const bool ok = loss1.size() == loss2.size() && grad1.cols() == loss1.size() &&
                    grad2.cols() == loss2.size() && logits1.cols() == loss1.size() &&
                    logits2.rows() == logits1.rows() && logits2.cols() == logits1.cols() &&
                    logits1.rows() > 0 && forget_rate >= 0.0 && forget_rate <= 1.0;
    // Local disagreement first, so that its size is what the ranks declare.
    disagree_.clear();
    if (ok) {
      for (Index j = 0; j < loss1.size(); ++j) {
        if (regula::detail::argmax_nan_max(logits1.col(j)) !=
            regula::detail::argmax_nan_max(logits2.col(j))) {
          disagree_.push_back(j);
        }
      }
    }
    const std::size_t d = disagree_.size();
    this->select1_.exchange_sizes(who, d, forget_rate, ok);
    if (!ok) {
      regula::detail::check_pair(who, loss1, loss2, grad1, grad2);
      regula::detail::check_same_shape(who, "logits2", logits2, "logits1", logits1);
      REGULA_EXPECTS(logits1.cols() == loss1.size(), who, "logits1 must have one column per sample (",
                     loss1.size(), "), got ", logits1.cols());
      REGULA_EXPECTS(logits1.rows() > 0, who, "logits1 must have at least one class");
      (void)keep_count(0, forget_rate);
    }
    const std::size_t global_d = this->select1_.global_size();
    if (global_d == 0) {
      if (options_.empty == EmptyDisagreement::skip) {
        grad1.setZero();
        grad2.setZero();
        return {};
      }
      all_.resize(static_cast<std::size_t>(loss1.size()));
      for (Index j = 0; j < loss1.size(); ++j) all_[static_cast<std::size_t>(j)] = j;
      std::uint64_t n = all_.size();
      MPI_Allreduce(MPI_IN_PLACE, &n, 1, MPI_UINT64_T, MPI_SUM, this->comm_);
      return this->finish(loss1.data(), loss2.data(), n, n, all_, all_, grad1, grad2);
    }
    const std::size_t keep = keep_count(global_d, forget_rate);
    pick(this->select1_, loss1.data(), keep, picked1_);
    this->select2_.share_sizes(this->select1_);
    pick(this->select2_, loss2.data(), keep, picked2_);
    return this->finish(loss1.data(), loss2.data(), this->select1_.global_kept(),
                        this->select2_.global_kept(), picked2_, picked1_, grad1, grad2);
  }

  /// This rank's part of the disagreement set (local indices).
  [[nodiscard]] const std::vector<Index>& disagreement() const noexcept { return disagree_; }

 private:
  void pick(GlobalSmallLossSelector<T>& sel, const T* loss, std::size_t keep, std::vector<Index>& out) {
    compact_.resize(disagree_.size());
    for (std::size_t j = 0; j < disagree_.size(); ++j) compact_[j] = loss[disagree_[j]];
    sel.gather(compact_.data(), compact_.size());
    const std::vector<Index>& local = sel.select_gathered(compact_.size(), keep);
    out.resize(local.size());
    for (std::size_t j = 0; j < local.size(); ++j) out[j] = disagree_[static_cast<std::size_t>(local[j])];
  }

  CoTeachingPlusOptions options_;
  std::vector<Index> disagree_, picked1_, picked2_, all_;
  std::vector<T> compact_;
};

/// JoCoR over the global batch: each rank computes its samples' joint losses, the k smallest
/// over all ranks are selected (keep_count(N, r), ties to the lower global index, NaN last), and
/// each rank's gradients are those of the global mean joint loss for its own columns — equal to
/// JoCoR::step on the concatenated batch. Collective.
template <class T>
class GlobalJoCoR {
 public:
  GlobalJoCoR(MPI_Comm comm, JoCoROptions options = {}) : comm_(comm), jocor_(options), select_(comm) {}

  /// Arguments as JoCoR::step for this rank's shard.
  /// @throws regula::invalid_argument on every rank if any rank's arguments are invalid or the
  ///         ranks' forget rates differ.
  JoCoRResult<T> step(const MatrixCRef<T>& logits1, const MatrixCRef<T>& logits2, const LabelsCRef& labels,
                      double forget_rate, MatrixRef<T> grad1, MatrixRef<T> grad2) {
    constexpr const char* who = "regula::mpi::GlobalJoCoR::step";
    bool ok = logits2.rows() == logits1.rows() && logits2.cols() == logits1.cols() &&
              labels.size() == logits1.cols() && grad1.rows() == logits1.rows() &&
              grad1.cols() == logits1.cols() && grad2.rows() == logits1.rows() &&
              grad2.cols() == logits1.cols() && forget_rate >= 0.0 && forget_rate <= 1.0 &&
              (logits1.cols() == 0 || logits1.rows() > 0);
    for (Index j = 0; ok && j < labels.size(); ++j) ok = labels(j) >= 0 && labels(j) < logits1.rows();
    const auto n = static_cast<std::size_t>(logits1.cols());
    select_.exchange_sizes(who, n, forget_rate, ok);
    if (!ok) {
      regula::detail::check_same_shape(who, "logits2", logits2, "logits1", logits1);
      regula::detail::check_same_shape(who, "grad1", grad1, "logits1", logits1);
      regula::detail::check_same_shape(who, "grad2", grad2, "logits1", logits1);
      (void)keep_count(0, forget_rate);
      REGULA_EXPECTS(labels.size() == logits1.cols(), who, "labels must have one entry per sample (",
                     logits1.cols(), "), got ", labels.size());
      REGULA_EXPECTS(false, who, "labels must be in [0, ", logits1.rows(), ")");
    }
    losses_.resize(static_cast<Index>(n));
    if (n > 0) jocor_.per_sample(logits1, logits2, labels, losses_);
    select_.gather(losses_.data(), n);
    const std::vector<Index>& mine = select_.select_gathered(n, keep_count(select_.global_size(), forget_rate));
    const auto k = static_cast<double>(select_.global_kept());
    double sum = n > 0 ? jocor_.gradients(mine, k, labels, grad1, grad2) : 0.0;
    MPI_Allreduce(MPI_IN_PLACE, &sum, 1, MPI_DOUBLE, MPI_SUM, comm_);
    JoCoRResult<T> r;
    r.kept = select_.global_kept();
    r.loss = r.kept == 0 ? T(0) : static_cast<T>(sum / k);
    return r;
  }

  /// This rank's selected samples (local indices).
  [[nodiscard]] const std::vector<Index>& selected() const noexcept { return select_.selected(); }

 private:
  MPI_Comm comm_;
  JoCoR<T> jocor_;
  GlobalSmallLossSelector<T> select_;
  Vector<T> losses_;
};

/// Batch-wise Sinkhorn KD (sinkhorn_kd) over the global batch: the B × B plan couples samples of
/// every rank, so each rank all-gathers the student and teacher logits (2·C·N values, the batch
/// times the classes — not the model), solves the global problem, and keeps the gradient of its
/// own columns. The loss is the global loss on every rank, and each rank's gradient equals the
/// single-process gradient's columns of its samples, so summing the model gradients over ranks
/// gives the single-process gradient. Collective.
template <class T>
class GlobalSinkhornKD {
  static_assert(is_scalar_v<T>, "regula::mpi::GlobalSinkhornKD<T>: T must be float or double");

 public:
  explicit GlobalSinkhornKD(MPI_Comm comm, SinkhornKDOptions options = {})
      : comm_(comm), options_(std::move(options)) {}

  /// Loss over the global batch; `dstudent` (C × n_r) receives this rank's columns of the gradient.
  /// @throws regula::invalid_argument on every rank if the ranks' class counts differ or any
  ///         rank's shapes do not match; the loss's own checks apply to the global batch.
  T forward_backward(const MatrixCRef<T>& student, const MatrixCRef<T>& teacher, MatrixRef<T> dstudent) {
    constexpr const char* who = "regula::mpi::GlobalSinkhornKD::forward_backward";
    const bool ok = teacher.rows() == student.rows() && teacher.cols() == student.cols() &&
                    dstudent.rows() == student.rows() && dstudent.cols() == student.cols();
    const auto n = static_cast<std::size_t>(student.cols());
    const detail::Declaration mine{n, static_cast<double>(student.rows()), ok ? 1 : 0, 0};
    detail::agree(comm_, who, mine, counts_, displs_, total_, offset_, "the number of classes");
    if (!ok) {
      regula::detail::check_same_shape(who, "teacher", teacher, "student", student);
      regula::detail::check_same_shape(who, "dstudent", dstudent, "student", student);
    }
    const Index c = student.rows();
    z_.resize(c, static_cast<Index>(total_));
    v_.resize(c, static_cast<Index>(total_));
    dz_.resize(c, static_cast<Index>(total_));
    gather(student, z_, c);
    gather(teacher, v_, c);
    const T loss = sinkhorn_kd<T>(z_, v_, dz_, workspace_, options_);
    dstudent = dz_.middleCols(static_cast<Index>(offset_), static_cast<Index>(n));
    return loss;
  }

  /// The global workspace (cost and plan of the global batch).
  [[nodiscard]] const SinkhornKDWorkspace<T>& workspace() const noexcept { return workspace_; }

 private:
  /// All-gathers C × n_r column blocks into C × N (columns are contiguous samples).
  void gather(const MatrixCRef<T>& local, Matrix<T>& global, Index c) {
    local_.resize(c, local.cols());
    local_ = local;  // contiguous copy: the Ref may have an outer stride
    std::vector<int> counts(counts_.size()), displs(displs_.size());
    for (std::size_t r = 0; r < counts_.size(); ++r) {
      counts[r] = counts_[r] * static_cast<int>(c);
      displs[r] = displs_[r] * static_cast<int>(c);
    }
    MPI_Allgatherv(local_.data(), static_cast<int>(local_.size()), detail::datatype<T>(), global.data(),
                   counts.data(), displs.data(), detail::datatype<T>(), comm_);
  }

  MPI_Comm comm_;
  SinkhornKDOptions options_;
  SinkhornKDWorkspace<T> workspace_;
  Matrix<T> z_, v_, dz_, local_;
  std::vector<int> counts_, displs_;
  std::size_t total_ = 0, offset_ = 0;
};

}  // namespace regula::mpi

#endif  // REGULA_INTEGRATIONS_MPI_HPP
