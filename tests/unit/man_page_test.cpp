// man_page_test.cpp — keeps rt-milter.toml(5) honest: the keys its KEYS
// section lists (".TP" then ".B key", prefixed by the [table] names of the
// ".SS" heading above it) must be exactly rtm::config_keys(), the keys the
// configuration parser knows. A failure names the keys missing on each side.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "config.h"

namespace {

// "[rt] and [servers.NAME]" -> {"rt.", "servers.NAME."}; "[[route]]" ->
// {"route."}; a heading without brackets is the top level: {""}.
std::vector<std::string> prefixes_of(const std::string& heading) {
    static const std::regex table(R"(\[+([A-Za-z0-9_.]+)\]+)");
    std::vector<std::string> prefixes;
    for (std::sregex_iterator it(heading.begin(), heading.end(), table), end; it != end; ++it)
        prefixes.push_back((*it)[1].str() + ".");
    if (prefixes.empty()) prefixes.push_back("");
    return prefixes;
}

std::string first_word(const std::string& text) {
    const auto begin = text.find_first_not_of(" \t\"");
    if (begin == std::string::npos) return "";
    return text.substr(begin, text.find_first_of(" \t\"", begin) - begin);
}

// The keys documented in the KEYS section of a man(7) page.
std::set<std::string> documented_keys(std::istream& page) {
    std::set<std::string> keys;
    std::vector<std::string> prefixes{""};
    bool in_keys = false, after_tp = false;
    for (std::string line; std::getline(page, line);) {
        if (line.starts_with(".SH")) {
            in_keys = first_word(line.substr(3)) == "KEYS";
            prefixes = {""};
        } else if (in_keys && line.starts_with(".SS")) {
            prefixes = prefixes_of(line.substr(3));
        } else if (in_keys && after_tp && line.starts_with(".B ")) {
            for (const std::string& prefix : prefixes)
                keys.insert(prefix + first_word(line.substr(3)));
        }
        after_tp = line == ".TP";
    }
    return keys;
}

std::string listed(const std::set<std::string>& keys) {
    std::string out;
    for (const std::string& key : keys) out += (out.empty() ? "" : ", ") + key;
    return out.empty() ? "(none)" : out;
}

TEST(ManPage, DocumentedKeysParseFromHeadingsAndTaggedParagraphs) {
    std::istringstream page(
        ".SH DESCRIPTION\n.TP\n.B not_a_key\n.SH KEYS\n.SS \"Top level\"\n.TP\n.B socket\ntext\n"
        ".SS \"[rt] and [servers.NAME]\"\n.TP\n.B url\n.SS \"[[route]]\"\n.TP\n.B address\n"
        ".SH EXAMPLE\n.TP\n.B other\n");
    EXPECT_EQ(documented_keys(page),
              (std::set<std::string>{"socket", "rt.url", "servers.NAME.url", "route.address"}));
}

TEST(ManPage, ConfigPageListsExactlyTheKeysTheParserKnows) {
    std::ifstream page(RTM_CONFIG_MAN_PAGE);
    ASSERT_TRUE(page) << "cannot read " << RTM_CONFIG_MAN_PAGE;
    const std::set<std::string> documented = documented_keys(page);
    const std::vector<std::string> known_list = rtm::config_keys();
    const std::set<std::string> known(known_list.begin(), known_list.end());
    ASSERT_EQ(known.size(), known_list.size()) << "config_keys() lists a key twice";

    std::set<std::string> undocumented, unknown;
    for (const std::string& key : known)
        if (!documented.contains(key)) undocumented.insert(key);
    for (const std::string& key : documented)
        if (!known.contains(key)) unknown.insert(key);
    EXPECT_TRUE(undocumented.empty()) << "keys the parser knows that " << RTM_CONFIG_MAN_PAGE
                                      << " does not list: " << listed(undocumented);
    EXPECT_TRUE(unknown.empty()) << "keys " << RTM_CONFIG_MAN_PAGE
                                 << " lists that the parser does not know: " << listed(unknown);
}

}  // namespace
