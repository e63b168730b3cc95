// json.h — JsonValue and parse_json: just enough JSON (RFC 8259) to read
// RT's REST2 answers: objects, arrays, strings (with \u escapes, surrogate
// pairs joined, as UTF-8), numbers kept as their text, true, false, null.
// Depth and size are bounded by the caller's input (RT's answer is capped);
// nesting deeper than 64 levels is refused. No writer: requests are built
// with json_quote().
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rtm {

struct JsonValue {
    enum class Kind { Null, Bool, Number, String, Array, Object };
    Kind kind = Kind::Null;
    bool boolean = false;
    std::string text;  // a String's value, or a Number's text as written
    std::vector<JsonValue> items;
    std::map<std::string, JsonValue> members;  // a repeated name: the last one

    bool is_object() const { return kind == Kind::Object; }
    // The member `name` of an object; nullptr when absent or not an object.
    const JsonValue* get(const std::string& name) const;
    // A String's or a Number's text, else "".
    std::string scalar() const { return kind == Kind::String || kind == Kind::Number ? text : std::string(); }
};

// The value, or nullopt with `error` set (what and at which byte).
std::optional<JsonValue> parse_json(std::string_view text, std::string& error);

// `s` as a JSON string literal, quotes included.
std::string json_quote(std::string_view s);

}  // namespace rtm
