// Strict JSON: limits, duplicate keys, trailing data, typed getters that name the field.
#include "core/json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>

#include "test_util.h"

namespace zf {
namespace {

using test::FailsWith;
using test::FailsWithField;
using test::IsOk;
using test::must;

std::string nested_arrays(int levels, std::string_view inner = "") {
  return std::string(levels, '[') + std::string(inner) + std::string(levels, ']');
}

std::string nested_objects(int levels) {
  std::string s;
  for (int i = 0; i < levels; ++i) s += "{\"a\":";
  s += "1";
  s += std::string(levels, '}');
  return s;
}

// ---- parse_json_strict: good input

TEST(ParseJsonStrict, ParsesValues) {
  auto j = parse_json_strict(R"({"a":1,"b":[true,null,"x"],"c":{"d":-2.5},"e":"\u4e2d"})");
  ASSERT_THAT(j, IsOk());
  EXPECT_EQ((*j)["a"], 1);
  EXPECT_EQ((*j)["b"][0], true);
  EXPECT_TRUE((*j)["b"][1].is_null());
  EXPECT_EQ((*j)["c"]["d"], -2.5);
  EXPECT_EQ((*j)["e"], "\xe4\xb8\xad");
}

TEST(ParseJsonStrict, ParsesScalarsAtTopLevel) {
  EXPECT_EQ(*parse_json_strict("1"), 1);
  EXPECT_EQ(*parse_json_strict("\"s\""), "s");
  EXPECT_TRUE(parse_json_strict("null")->is_null());
}

TEST(ParseJsonStrict, AllowsSurroundingWhitespace) {
  EXPECT_THAT(parse_json_strict(" \n{\"a\": 1}\t\n"), IsOk());
}

TEST(ParseJsonStrict, SameKeyInDifferentObjectsIsNotADuplicate) {
  EXPECT_THAT(parse_json_strict(R"({"a":{"a":1},"b":{"a":2}})"), IsOk());
  EXPECT_THAT(parse_json_strict(R"([{"a":1},{"a":1}])"), IsOk());
  EXPECT_THAT(parse_json_strict(R"({"x":{"k":1},"y":[{"k":2}],"k":3})"), IsOk());
}

// ---- parse_json_strict: bad input

TEST(ParseJsonStrict, MalformedJsonIsRefused) {
  for (const char* t : {"",
                        " ",
                        "{",
                        "}",
                        "[1,]",
                        "{\"a\":}",
                        "{\"a\" 1}",
                        "{'a':1}",
                        "{a:1}",
                        "NaN",
                        "Infinity",
                        "01",
                        "1.",
                        ".5",
                        "+1",
                        "\"unterminated",
                        "\"bad escape \\x\"",
                        "[1 2]",
                        "{\"a\":1,}",
                        "tru",
                        "nul",
                        "\"tab\tinside\""})
    EXPECT_THAT(parse_json_strict(t), FailsWith(Errc::malformed_json)) << t;
}

TEST(ParseJsonStrict, CommentsAreRefused) {
  EXPECT_THAT(parse_json_strict("/* c */ {}"), FailsWith(Errc::malformed_json));
  EXPECT_THAT(parse_json_strict("{} // c"), FailsWith(Errc::malformed_json));
}

TEST(ParseJsonStrict, TrailingDataIsRefused) {
  for (const char* t : {"{} x", "{}{}", "[1] [2]", "1 2", "{\"a\":1}}", "null,"})
    EXPECT_THAT(parse_json_strict(t), FailsWith(Errc::malformed_json)) << t;
}

TEST(ParseJsonStrict, NulBytesAreRefused) {
  // A NUL must not act as an end-of-input marker that hides what follows.
  EXPECT_THAT(parse_json_strict(std::string_view("{}\0", 3)), FailsWith(Errc::malformed_json));
  EXPECT_THAT(parse_json_strict(std::string_view("{\"a\":1}\0{\"a\":2}", 15)),
              FailsWith(Errc::malformed_json));
  EXPECT_THAT(parse_json_strict(std::string_view("{\"a\":\"x\0y\"}", 11)),
              FailsWith(Errc::malformed_json));
  EXPECT_THAT(parse_json_strict(std::string_view("\0", 1)), FailsWith(Errc::malformed_json));
  // An escaped NUL inside a string is fine.
  auto j = parse_json_strict(R"({"a":"x\u0000y"})");
  ASSERT_THAT(j, IsOk());
  EXPECT_EQ((*j)["a"].get<std::string>(), std::string("x\0y", 3));
}

TEST(ParseJsonStrict, InvalidUtf8IsRefused) {
  EXPECT_THAT(parse_json_strict("\"\xff\""), FailsWith(Errc::malformed_json));
  EXPECT_THAT(parse_json_strict("\"\xc3\""), FailsWith(Errc::malformed_json));
  EXPECT_THAT(parse_json_strict("{\"\xed\xa0\x80\":1}"), FailsWith(Errc::malformed_json));
}

TEST(ParseJsonStrict, DuplicateKeyIsRefusedAndNamed) {
  EXPECT_THAT(parse_json_strict(R"({"a":1,"a":2})"), FailsWithField(Errc::duplicate_key, "a"));
  EXPECT_THAT(parse_json_strict(R"({"a":1,"a":1})"), FailsWithField(Errc::duplicate_key, "a"));
  EXPECT_THAT(parse_json_strict(R"({"x":{"b":1,"b":2}})"),
              FailsWithField(Errc::duplicate_key, "b"));
  EXPECT_THAT(parse_json_strict(R"([{"c":1,"c":2}])"), FailsWithField(Errc::duplicate_key, "c"));
  // A nested object in between must not reset the outer object's key set.
  EXPECT_THAT(parse_json_strict(R"({"a":{"b":1},"a":2})"),
              FailsWithField(Errc::duplicate_key, "a"));
  EXPECT_THAT(parse_json_strict(R"({"a":1,"n":{"z":[{"q":1}]},"a":2})"),
              FailsWithField(Errc::duplicate_key, "a"));
}

TEST(ParseJsonStrict, DuplicateKeyHiddenByEscapesIsRefused) {
  // "\u0061" is "a": two readers must never see different values for one key.
  EXPECT_THAT(parse_json_strict(R"({"a":1,"\u0061":2})"), FailsWithField(Errc::duplicate_key, "a"));
}

TEST(ParseJsonStrict, TooLargeIsRefusedBeforeParsing) {
  JsonLimits limits{16, 16};
  EXPECT_THAT(parse_json_strict(R"({"a":"12345678"})", limits), IsOk());  // exactly 16 bytes
  EXPECT_THAT(parse_json_strict(R"({"a":"123456789"})", limits), FailsWith(Errc::too_large));
  // Size is checked first: even garbage over the limit is too_large.
  EXPECT_THAT(parse_json_strict(std::string(17, '{'), limits), FailsWith(Errc::too_large));
}

TEST(ParseJsonStrict, DefaultLimitIs64KiB) {
  std::string at_limit = "\"" + std::string(64 * 1024 - 2, 'x') + "\"";
  ASSERT_EQ(at_limit.size(), 64u * 1024);
  EXPECT_THAT(parse_json_strict(at_limit), IsOk());
  std::string over = "\"" + std::string(64 * 1024 - 1, 'x') + "\"";
  EXPECT_THAT(parse_json_strict(over), FailsWith(Errc::too_large));
}

TEST(ParseJsonStrict, NestingUpToTheLimitIsAccepted) {
  EXPECT_THAT(parse_json_strict(nested_arrays(16)), IsOk());
  EXPECT_THAT(parse_json_strict(nested_arrays(16, "1")), IsOk());
  EXPECT_THAT(parse_json_strict(nested_objects(16)), IsOk());
  EXPECT_THAT(parse_json_strict("[[1]]", {1024, 2}), IsOk());
  EXPECT_THAT(parse_json_strict("[]", {1024, 1}), IsOk());
}

TEST(ParseJsonStrict, NestingBeyondTheLimitIsTooDeep) {
  EXPECT_THAT(parse_json_strict(nested_arrays(17, "1")), FailsWith(Errc::too_deep));
  EXPECT_THAT(parse_json_strict(nested_objects(17)), FailsWith(Errc::too_deep));
  EXPECT_THAT(parse_json_strict(nested_arrays(1000)), FailsWith(Errc::too_deep));
  EXPECT_THAT(parse_json_strict("[[[1]]]", {1024, 2}), FailsWith(Errc::too_deep));
  EXPECT_THAT(parse_json_strict(R"({"a":{"b":{}}})", {1024, 2}), FailsWith(Errc::too_deep));
}

TEST(ParseJsonStrict, DepthCountsContainersWhetherEmptyOrNot) {
  // Seventeen nested containers are too deep for a limit of 16, with or without content.
  EXPECT_THAT(parse_json_strict(nested_arrays(17)), FailsWith(Errc::too_deep));
  EXPECT_THAT(parse_json_strict("[[[]]]", {1024, 2}), FailsWith(Errc::too_deep));
  EXPECT_THAT(parse_json_strict(R"({"a":{"b":[]}})", {1024, 2}), FailsWith(Errc::too_deep));
}

TEST(ParseJsonStrict, DeepInputWithinSizeLimitDoesNotCrash) {
  // 64 KiB of '[' is the worst nesting the size limit allows.
  EXPECT_THAT(parse_json_strict(std::string(64 * 1024, '[')), FailsWith(Errc::too_deep));
  EXPECT_THAT(parse_json_strict(nested_arrays(32 * 1024 - 1)), FailsWith(Errc::too_deep));
}

TEST(ParseJsonStrict, NeverThrowsOnRandomBytes) {
  std::mt19937 rng(1234);
  const std::string alphabet = "{}[]\":,0123456789.eE+-tfnrul \\\x80\xff\x00";
  for (int i = 0; i < 2000; ++i) {
    std::string s(rng() % 64, ' ');
    for (auto& c : s) c = alphabet[rng() % alphabet.size()];
    EXPECT_NO_THROW((void)parse_json_strict(s, {1024, 4})) << s;
  }
}

// ---- dump_json

TEST(DumpJson, IsCompactWithSortedKeys) {
  Json j = must(parse_json_strict(R"({ "b": 1, "a": [1, 2], "c": {"z": null, "y": "s"} })"));
  EXPECT_EQ(dump_json(j), R"({"a":[1,2],"b":1,"c":{"y":"s","z":null}})");
}

TEST(DumpJson, RoundTripsThroughStrictParse) {
  Json j = {{"n", -5}, {"s", "\xe4\xb8\xad\n\""}, {"arr", {1, 2, 3}}};
  auto back = parse_json_strict(dump_json(j));
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(*back, j);
}

TEST(DumpJson, InvalidUtf8DoesNotThrow) {
  Json j = std::string("\xff");
  std::string out;
  EXPECT_NO_THROW(out = dump_json(j));
  EXPECT_THAT(parse_json_strict(out), IsOk());
}

// ---- getters

class JsonGetters : public ::testing::Test {
 protected:
  Json obj = must(parse_json_strict(R"({
    "s": "hello", "empty": "", "i": -42, "u": 18446744073709551615, "big": 9223372036854775807,
    "min": -9223372036854775808, "over": 9223372036854775808, "f": 1.0, "e": 1e3, "b": true,
    "n": null, "o": {}, "a": []
  })"));
};

TEST_F(JsonGetters, GetString) {
  EXPECT_EQ(*get_string(obj, "s"), "hello");
  EXPECT_EQ(*get_string(obj, "empty"), "");
  EXPECT_EQ(*get_string(obj, "s", 5), "hello");  // max_len is inclusive
  EXPECT_THAT(get_string(obj, "s", 4), FailsWithField(Errc::bad_field, "s"));
  EXPECT_THAT(get_string(obj, "missing"), FailsWithField(Errc::missing_field, "missing"));
  for (const char* f : {"i", "b", "n", "o", "a", "f"})
    EXPECT_THAT(get_string(obj, f), FailsWithField(Errc::bad_field, f)) << f;
}

TEST_F(JsonGetters, GetStringDefaultMaxIs256) {
  Json j = {{"s", std::string(256, 'x')}, {"t", std::string(257, 'x')}};
  EXPECT_THAT(get_string(j, "s"), IsOk());
  EXPECT_THAT(get_string(j, "t"), FailsWithField(Errc::bad_field, "t"));
}

TEST_F(JsonGetters, GetInt) {
  EXPECT_EQ(*get_int(obj, "i"), -42);
  EXPECT_EQ(*get_int(obj, "big"), INT64_MAX);
  EXPECT_EQ(*get_int(obj, "min"), INT64_MIN);
  EXPECT_THAT(get_int(obj, "missing"), FailsWithField(Errc::missing_field, "missing"));
  // Out of int64 range must not wrap to a negative number.
  EXPECT_THAT(get_int(obj, "over"), FailsWithField(Errc::bad_field, "over"));
  EXPECT_THAT(get_int(obj, "u"), FailsWithField(Errc::bad_field, "u"));
  // Floats are not integers, even when integral.
  for (const char* f : {"f", "e", "s", "b", "n", "o", "a"})
    EXPECT_THAT(get_int(obj, f), FailsWithField(Errc::bad_field, f)) << f;
}

TEST_F(JsonGetters, GetBool) {
  EXPECT_EQ(*get_bool(obj, "b"), true);
  EXPECT_THAT(get_bool(obj, "missing"), FailsWithField(Errc::missing_field, "missing"));
  for (const char* f : {"i", "s", "n", "o"})
    EXPECT_THAT(get_bool(obj, f), FailsWithField(Errc::bad_field, f)) << f;
}

TEST_F(JsonGetters, GettersOnNonObjectsReportMissing) {
  Json arr = Json::array({1, 2});
  EXPECT_THAT(get_string(arr, "s"), FailsWith(Errc::missing_field));
  EXPECT_THAT(get_int(Json(5), "i"), FailsWith(Errc::missing_field));
}

TEST_F(JsonGetters, HasField) {
  EXPECT_TRUE(has_field(obj, "n"));
  EXPECT_FALSE(has_field(obj, "missing"));
  EXPECT_FALSE(has_field(Json::array(), "n"));
  EXPECT_FALSE(has_field(Json("n"), "n"));
}

TEST(OnlyFields, AcceptsSubsetOfAllowed) {
  EXPECT_THAT(only_fields(Json{{"a", 1}}, {"a", "b"}), IsOk());
  EXPECT_THAT(only_fields(Json::object(), {"a"}), IsOk());
}

TEST(OnlyFields, NamesTheUnknownField) {
  EXPECT_THAT(only_fields(Json{{"a", 1}, {"zz", 2}}, {"a", "b"}),
              FailsWithField(Errc::unknown_field, "zz"));
  EXPECT_THAT(only_fields(Json{{"A", 1}}, {"a"}), FailsWithField(Errc::unknown_field, "A"));
}

TEST(OnlyFields, RefusesNonObjects) {
  EXPECT_THAT(only_fields(Json::array(), {"a"}), FailsWith(Errc::bad_field));
  EXPECT_THAT(only_fields(Json("a"), {"a"}), FailsWith(Errc::bad_field));
}

}  // namespace
}  // namespace zf
