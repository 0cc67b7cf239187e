// Face to face between real applets in one room: an in-process stand-in for
// the short-range link that can drop any message, lose any answer, or rewrite
// one on its way, and a fixture whose SEs sit in that room beside the real
// registry and CA of registry_world.h. Shared by the face-to-face tests.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "registry_world.h"

namespace zf::test {

// The link between SEs in one room. `fault` decides, per message, what goes wrong.
class Room {
 public:
  enum class Fault { none, drop_request, drop_answer };
  std::function<Fault(const Json& message)> fault = [](const Json&) { return Fault::none; };
  // Rewrites a message on its way (an attacker between the SEs).
  std::function<void(Json& message)> tamper = [](Json&) {};
  std::function<std::int64_t()> clock;
  std::map<std::string, Se*> nearby;
  int exchanges = 0;

  class Link : public se::PeerLink {
   public:
    Link(Room& room, Se& self) : room_(room), self_(self) {}
    Result<Bytes> exchange(const std::string& peer_id, ByteView message) override {
      ++room_.exchanges;
      auto it = room_.nearby.find(peer_id);
      if (it == room_.nearby.end()) return fail(Errc::unavailable, "no SE called " + peer_id + " nearby");
      Json m = must(parse_json_strict(to_string(message)), "peer message");
      room_.tamper(m);
      Fault f = room_.fault(m);
      if (f == Fault::drop_request) return fail(Errc::unavailable, "the link dropped");
      Se& peer = *it->second;
      Bytes answer = peer.applet->process_peer(as_bytes(dump_json(m)), room_.clock() + peer.skew);
      // The peer's host persists before its answer leaves.
      if (peer.applet->dirty()) peer.saved = peer.applet->state_json();
      if (f == Fault::drop_answer) return fail(Errc::unavailable, "the link dropped");
      return answer;
    }
    Status persist() override {
      self_.saved = self_.applet->state_json();
      return {};
    }
    void close() override {}

   private:
    Room& room_;
    Se& self_;
  };
};

class F2fRoomTest : public SeRegistryTest {
 protected:
  Se& nearby_se(const std::string& id, const std::string& user, const Json& limits = {}) {
    Se& se = active_se(id, user, limits);
    room.clock = [this] { return w.now; };
    links[id] = std::make_unique<Room::Link>(room, se);
    se.applet->set_peer_link(links[id].get());
    room.nearby[id] = &se;
    se.saved = se.applet->state_json();
    return se;
  }
  // A power cut: the SE comes back with what its host last made durable.
  void power_cut(Se& se) {
    load(se, se.saved);
    se.applet->set_peer_link(links[se.id].get());
  }
  // The host loads another state (an older copy the attacker kept), still in the room.
  void restore(Se& se, const Json& state) {
    load(se, state);
    se.applet->set_peer_link(links[se.id].get());
    se.saved = se.applet->state_json();
  }
  // What an honest payer terminal does: F2F PAY, compare the code, F2F SEND.
  Json pay(Se& payer, Se& payee, std::int64_t amount) {
    Json agreed = must(payer.client->f2f_pay(Json{{"amount", amount}, {"currency", "CNY"}, {"payee", payee.id}}),
                       "F2F PAY");
    EXPECT_EQ(agreed.at("code"), must(payee.client->f2f_state(), "payee state").at("code"))
        << "both terminals show the same code";
    return must(payer.client->f2f_send(), "F2F SEND");
  }
  void receiving(Se& payee) { must(payee.client->f2f_receive(120), "F2F RECEIVE"); }
  std::int64_t undelivered(Se& se) { return must(se.client->info()).at("f2f_undelivered").get<std::int64_t>(); }
  Json undelivered_payment(Se& se) {
    Json st = must(se.client->f2f_state());
    EXPECT_EQ(st.at("undelivered").size(), 1u) << st.dump();
    return st.at("undelivered").at(0);
  }
  // Settles what `payee` took offline: the claim, the registry, the record.
  Result<Json> reconcile(Se& payee, const std::string& id) {
    auto claim = payee.client->f2f_reconcile_claim(id);
    if (!claim) return std::unexpected(claim.error());
    auto rec = at_registry(claim->at("claim").get<std::string>());
    if (!rec) return std::unexpected(rec.error());
    return payee.client->f2f_settle(id, rec->record_jws);
  }

  Room room;
  std::map<std::string, std::unique_ptr<Room::Link>> links;
};

}  // namespace zf::test
