// Bad calls for the no-exceptions build (compiled with -fno-exceptions). With
// REGULA_NOEXCEPT_OVERRIDE, REGULA_THROW routes every error to a handler of this program that
// reports and aborts; without it, the library's own default prints the message and aborts.
// `noexcept_calls valid` runs valid calls of the same families and exits 0; `noexcept_calls
// NAME` runs one bad call, which must not return.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#error "this program must be compiled with -fno-exceptions"
#endif

#if REGULA_NOEXCEPT_OVERRIDE
namespace {
[[noreturn]] void no_exceptions_handler(const char* what) {
  std::fprintf(stderr, "no-exceptions handler: %s\n", what);
  std::fflush(stderr);
  std::abort();
}
}  // namespace
#define REGULA_THROW(exception) no_exceptions_handler((exception).what())
#endif

#include "regula/regula.hpp"

namespace {

using regula::Index;
using regula::Labels;
using M = regula::Matrix<float>;
using V = regula::Vector<float>;

/// A program that goes on after a bad call has swallowed the error: report it.
[[noreturn]] void returned(const char* name) {
  std::fprintf(stderr, "bad call %s returned\n", name);
  std::exit(3);
}

int run_valid() {
  const M x = M::Random(6, 4);
  M y(6, 4);
  regula::Stream stream(7);
  const regula::Dropout<float> drop(regula::DropoutOptions{0.5});
  (void)drop.forward(x, y, stream);
  Labels labels(4);
  labels << 0, 1, 2, 0;
  const M z = M::Random(3, 4);
  M dz(3, 4);
  const float ce = regula::cross_entropy(z, labels, dz);
  const float st = regula::stablemax_cross_entropy(z, labels, dz);
  const float kd = regula::kd_kl(z, M::Random(3, 4), regula::KDLossOptions{}.with_temperature(4.0));
  regula::SinkhornKDWorkspace<float> ws;
  const float sk = regula::sinkhorn_kd<float>(z, M::Random(3, 4), ws);
  V losses(4);
  losses << 0.5F, 0.1F, 0.9F, 0.3F;
  regula::SmallLossSelector<float> sel;
  const auto& picked = sel.select(losses, 2);
  const auto noisy = regula::inject_label_noise({0, 1, 2}, 3, regula::LabelNoiseOptions{});
  regula::JoCoR<float> jocor(regula::JoCoROptions{0.5});
  M g1(3, 4), g2(3, 4);
  (void)jocor.step(z, M::Random(3, 4), labels, 0.25, g1, g2);
  const bool ok = std::isfinite(ce) && std::isfinite(st) && std::isfinite(kd) &&
                  std::isfinite(sk) && picked.size() == 2 && noisy.labels.size() == 3;
  std::printf("valid calls %s\n", ok ? "ok" : "wrong");
  return ok ? 0 : 1;
}

void run_bad(const char* name) {
  const M z = M::Random(3, 2);
  Labels labels(2);
  labels << 0, 5;
  regula::Stream stream(1);
  if (std::strcmp(name, "dropout_p") == 0) {
    const regula::Dropout<float> d(regula::DropoutOptions{1.5});
    (void)d;
  } else if (std::strcmp(name, "cross_entropy_label") == 0) {
    (void)regula::cross_entropy(z, labels);
  } else if (std::strcmp(name, "kd_temperature") == 0) {
    (void)regula::kd_kl(z, z, regula::KDLossOptions{}.with_temperature(-1.0));
  } else if (std::strcmp(name, "dropout_overlap") == 0) {
    std::vector<float> buf(16, 1.0F);
    const Eigen::Map<const M> x(buf.data(), 3, 2);
    Eigen::Map<M> y(buf.data() + 1, 3, 2);
    const regula::Dropout<float> d(regula::DropoutOptions{0.5});
    (void)d.forward(x, y, stream);
  } else if (std::strcmp(name, "small_loss_keep") == 0) {
    V l = V::Zero(4);
    regula::SmallLossSelector<float> sel;
    (void)sel.select(l, 5);
  } else if (std::strcmp(name, "sinkhorn_iterations") == 0) {
    regula::SinkhornKDWorkspace<float> ws;
    (void)regula::sinkhorn_kd<float>(z, z, ws, regula::SinkhornKDOptions{}.with_iterations(0));
  } else if (std::strcmp(name, "multi_sample_samples") == 0) {
    regula::MultiSampleDropoutOptions o;
    o.samples = 0;
    const regula::MultiSampleDropout<float, regula::PerSampleCrossEntropy<>> m(o);
    (void)m;
  } else if (std::strcmp(name, "nested_rho") == 0) {
    const regula::NestedDropout<float> n({4, regula::NestedPrior::geometric(1.5)});
    (void)n;
  } else if (std::strcmp(name, "label_noise_classes") == 0) {
    (void)regula::inject_label_noise({0, 0}, 1, regula::LabelNoiseOptions{});
  } else if (std::strcmp(name, "coteaching_rate") == 0) {
    const V l = V::Zero(2);
    M g1 = M::Zero(3, 2), g2 = M::Zero(3, 2);
    regula::CoTeaching<float> ct;
    (void)ct.exchange(l, l, 2.0, g1, g2);
  } else if (std::strcmp(name, "jocor_lambda") == 0) {
    const regula::JoCoR<float> j(regula::JoCoROptions{-1.0});
    (void)j;
  } else if (std::strcmp(name, "stablemax_shape") == 0) {
    M dz(2, 2);
    labels << 0, 1;
    (void)regula::stablemax_cross_entropy(z, labels, dz);
  } else {
    std::fprintf(stderr, "unknown call %s\n", name);
    std::exit(2);
  }
  returned(name);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s valid | CALL\n", argv[0]);
    return 2;
  }
  if (std::strcmp(argv[1], "valid") == 0) return run_valid();
  run_bad(argv[1]);
}
