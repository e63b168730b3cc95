// postgresql_conninfo.cpp — a PostgreSQL connection string checked and
// described through libpq's PQconninfoParse.
#include "postgresql_conninfo.h"

#include <libpq-fe.h>

#include <memory>

namespace rtm {
namespace {

using Options = std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)>;

Options parse(const std::string& conninfo, std::string& error) {
    char* message = nullptr;
    Options options(PQconninfoParse(conninfo.c_str(), &message), &PQconninfoFree);
    if (!options) {
        error = message ? message : "not a connection string";
        while (!error.empty() && error.back() == '\n') error.pop_back();
    }
    PQfreemem(message);
    return options;
}

}  // namespace

bool is_postgresql_conninfo(std::string_view spec) {
    return spec.rfind("postgresql://", 0) == 0 || spec.rfind("postgres://", 0) == 0 ||
           (!spec.empty() && spec.front() != '/' && spec.find('=') != std::string_view::npos);
}

Problem check_postgresql_conninfo(std::string_view conninfo) {
    std::string error;
    Options options = parse(std::string(conninfo), error);
    if (!options) return "not a PostgreSQL connection string libpq understands: " + error;
    for (const PQconninfoOption* o = options.get(); o->keyword; ++o) {
        if (std::string_view(o->keyword) == "password" && o->val && *o->val)
            return std::string(
                "a password in the connection string; put it in a passfile (passfile=… in the "
                "string, PGPASSFILE, or ~/.pgpass of the service user), mode 0600");
    }
    return std::nullopt;
}

std::string describe_conninfo(const std::string& conninfo) {
    std::string error;
    Options options = parse(conninfo, error);
    if (!options) return "postgresql (unparsable connection string)";
    std::string out = "postgresql";
    for (const std::string_view key : {"host", "hostaddr", "port", "dbname", "user"}) {
        for (const PQconninfoOption* o = options.get(); o->keyword; ++o) {
            if (o->keyword == key && o->val && *o->val)
                out += " " + std::string(key) + "=" + o->val;
        }
    }
    return out;
}

}  // namespace rtm
