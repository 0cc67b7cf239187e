// The applet's bounded sets of ids (se::RecentIds, se::ReceivedIds): what they
// forget, and that forgetting never lets a payment be credited twice.
#include <gtest/gtest.h>

#include "se/applet.h"

namespace zf::se {
namespace {

TEST(RecentIdsTest, KeepsTheNewestAndForgetsTheOldest) {
  RecentIds r(3);
  for (const char* id : {"a", "b", "c", "d"}) r.insert(id);
  EXPECT_FALSE(r.contains("a"));
  EXPECT_TRUE(r.contains("b") && r.contains("c") && r.contains("d"));
  r.insert("c");  // again: no change in order or size
  EXPECT_EQ(r.size(), 3u);
  RecentIds back = RecentIds::from_json(r.to_json(), 3);
  EXPECT_EQ(back.to_json(), r.to_json());
  r.insert("e");
  EXPECT_FALSE(r.contains("b"));
}

TEST(ReceivedIdsTest, AForgottenIdRaisesTheFloorAndEverythingAtOrBelowItCountsAsSeen) {
  ReceivedIds r;
  const std::int64_t base = 1'800'000'000;
  // Arrive out of order: the eviction goes by iat, not by arrival.
  for (std::size_t i = 0; i < ReceivedIds::kKept; ++i)
    r.insert("n" + std::to_string(i), base + static_cast<std::int64_t>(ReceivedIds::kKept - i));
  EXPECT_EQ(r.floor(), 0);
  EXPECT_FALSE(r.seen("fresh", base));
  // One more: the one with the smallest iat (n1023, iat base + 1) goes, and the floor rises to it.
  r.insert("late", base + 5000);
  EXPECT_EQ(r.size(), ReceivedIds::kKept);
  EXPECT_EQ(r.floor(), base + 1);
  EXPECT_FALSE(r.contains("n1023"));
  EXPECT_TRUE(r.seen("n1023", base + 1)) << "a forgotten id must still count as seen";
  EXPECT_TRUE(r.seen("never-seen-but-old", base));
  EXPECT_FALSE(r.seen("never-seen-newer", base + 2));
  EXPECT_TRUE(r.seen("n0", base + static_cast<std::int64_t>(ReceivedIds::kKept)));
}

TEST(ReceivedIdsTest, TheFloorSurvivesTheStateAndNeverGoesDown) {
  ReceivedIds r;
  for (int i = 0; i < static_cast<int>(ReceivedIds::kKept) + 10; ++i) r.insert("n" + std::to_string(i), 100 + i);
  ASSERT_EQ(r.floor(), 109);
  auto back = ReceivedIds::from_json(r.to_json(), r.floor());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->floor(), 109);
  EXPECT_TRUE(back->seen("n5", 105));
  EXPECT_EQ(back->to_json(), r.to_json());
  // A note with an iat far in the past does not lower the floor when it arrives.
  back->insert("old", 1);
  EXPECT_EQ(back->floor(), 109);
}

TEST(ReceivedIdsTest, AStateFromBeforeTheBoundLoadsItsIdsAsTheOldest) {
  Json ids = Json::array({"se-a:1", "se-a:2"});
  auto r = ReceivedIds::from_json(ids, 0);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->contains("se-a:1") && r->contains("se-a:2"));
  EXPECT_FALSE(r->seen("se-a:3", 1));
}

}  // namespace
}  // namespace zf::se
