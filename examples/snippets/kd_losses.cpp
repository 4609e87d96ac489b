// Distillation losses in a hand-written training step: every call returns the reduced loss and
// writes dL/dstudent_logits. Logits are classes x batch (one column per sample).
#include <cstdio>

#include <regula/losses/binary_kl.hpp>
#include <regula/losses/cross_entropy.hpp>
#include <regula/losses/dkd.hpp>
#include <regula/losses/dual_head.hpp>
#include <regula/losses/js.hpp>
#include <regula/losses/kd_kl.hpp>
#include <regula/losses/logit_mse.hpp>
#include <regula/losses/reverse_kl.hpp>
#include <regula/losses/sinkhorn_kd.hpp>
#include <regula/losses/total_variation.hpp>

int main() {
  const Eigen::Index C = 10, B = 8;
  const Eigen::MatrixXf student = Eigen::MatrixXf::Random(C, B) * 3.0f;
  const Eigen::MatrixXf teacher = Eigen::MatrixXf::Random(C, B) * 3.0f;
  regula::Labels labels(B);
  for (Eigen::Index i = 0; i < B; ++i) labels[i] = i % C;
  Eigen::MatrixXf grad(C, B), g_ce(C, B);

  // [kd_kl] Hinton KD: 0.1·CE + 0.9·T²·KL at T = 4 (mdistiller's CIFAR-100 recipe).
  const auto kd_opt = regula::KDLossOptions{}.with_temperature(4.0);  // T² factor on, batchmean
  const float kd = regula::kd_kl(student, teacher, grad, kd_opt);
  const float ce = regula::cross_entropy(student, labels, g_ce);
  const float total = 0.1f * ce + 0.9f * kd;
  const Eigen::MatrixXf dlogits = 0.1f * g_ce + 0.9f * grad;
  // [kd_kl]

  // [divergences] The other logit-level losses take the same options.
  const float rkl = regula::reverse_kl(student, teacher, grad, kd_opt);
  const float js = regula::js(student, teacher, grad, kd_opt);
  const float tv = regula::total_variation(student, teacher, grad, kd_opt);
  const float mse = regula::logit_mse(student, teacher, grad);  // F.mse_loss semantics
  const float lskd =
      regula::logit_std_kd(student, teacher, grad, regula::KDLossOptions{}.with_temperature(2.0));
  Eigen::VectorXf per_sample(B);
  regula::kd_kl_per_sample(student, teacher, per_sample, kd_opt);  // one loss per sample
  // [divergences]

  // [dkd] DKD with mdistiller's defaults (alpha 1, beta 8, T 4); the warm-up factor is yours.
  const int epoch = 3, warmup = 20;
  const float warm = epoch < warmup ? float(epoch) / float(warmup) : 1.0f;
  const float dkd =
      regula::dkd(student, teacher, labels, grad, regula::DKDOptions{}.with_beta(8.0));
  grad *= warm;
  // [dkd]

  // [sinkhorn] SinKD: keep the workspace across steps so warm calls do not allocate.
  regula::SinkhornKDWorkspace<float> ws;
  const float sk =
      regula::sinkhorn_kd<float>(student, teacher, grad, ws,
                                 regula::SinkhornKDOptions{}.with_epsilon(0.1).with_iterations(20));
  const Eigen::MatrixXf& plan = ws.plan();  // B x B transport plan
  // [sinkhorn]

  // [dual_head] DHKD: CE on head 1, BinaryKL-Norm (T = 2) on head 2, aligned feature gradients.
  const Eigen::Index D = 6;
  const Eigen::MatrixXf features = Eigen::MatrixXf::Random(D, B);
  const Eigen::MatrixXf w1 = Eigen::MatrixXf::Random(C, D), w2 = Eigen::MatrixXf::Random(C, D);
  const Eigen::MatrixXf z1 = w1 * features, z2 = w2 * features;
  Eigen::MatrixXf dz1(C, B), dz2(C, B), dfeatures(D, B);
  auto ce_loss = [&](const regula::MatrixCRef<float>& z, regula::MatrixRef<float> dz) {
    return regula::cross_entropy(z, labels, dz);
  };
  auto bkln = [&](const regula::MatrixCRef<float>& z, regula::MatrixRef<float> dz) {
    return regula::binary_kl_norm(z, teacher, dz, regula::KDLossOptions{}.with_temperature(2.0));
  };
  const regula::DualHeadKD<float> dh(regula::DualHeadOptions{}.with_align(true));
  const auto losses = dh.forward_backward(z1, z2, ce_loss, bkln, dz1, dz2);
  const Eigen::MatrixXf df1 = w1.transpose() * dz1, df2 = w2.transpose() * dz2;
  dh.combine(df1, df2, dfeatures);  // what reaches the shared backbone
  // [dual_head]

  std::printf("kd %.4f ce %.4f total %.4f |dz| %.4f\n", double(kd), double(ce), double(total),
              double(dlogits.norm()));
  std::printf("rkl %.4f js %.4f tv %.4f mse %.4f lskd %.4f ps0 %.4f\n", double(rkl), double(js),
              double(tv), double(mse), double(lskd), double(per_sample[0]));
  std::printf("dkd %.4f sinkhorn %.6f plan mass %.3f dual-head %.4f |df| %.4f\n", double(dkd),
              double(sk), double(plan.sum()), double(losses.total), double(dfeatures.norm()));
  return 0;
}
