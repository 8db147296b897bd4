#include "gateway/guards/fault_guard.h"

#include "gateway/common/random.h"

namespace sluice::gateway::guards {

Admission FaultGuard::decide(double delay_draw, double abort_draw) const {
  Admission a;
  if (fault_.delay.count() > 0 && delay_draw * 100 < fault_.delay_percent) {
    a.verdict = Verdict::Delayed;
    a.wait = fault_.delay;
  }
  if (fault_.abort_status != 0 && abort_draw * 100 < fault_.abort_percent) {
    a.verdict = Verdict::Aborted;
    a.reply = http::LocalReply::text(fault_.abort_status, "fault injected");
    a.reply->fields.emplace_back("X-Sluice-Fault", "abort");
  }
  return a;
}

std::optional<Admission> FaultGuard::check(proxy::RequestContext& /*ctx*/) {
  return decide(uniformUnit(), uniformUnit());
}

boost::asio::awaitable<Admission> FaultGuard::admit(proxy::RequestContext& ctx) {
  co_return *check(ctx);  // never reached: check() always decides
}

}  // namespace sluice::gateway::guards
