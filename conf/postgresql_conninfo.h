// postgresql_conninfo.h — the `journal` value when it names a PostgreSQL
// database: a URI (postgresql://user@host/db) or libpq's keyword form
// ("host=… dbname=…"). Checks it with libpq's own parser (so both forms and
// every libpq keyword are understood) and refuses a password in it: the
// password comes from libpq's passfile. Describes it for log lines without
// a password. Opens no connection.
#pragma once

#include <string>

#include "value_checks.h"

namespace rtm {

// Whether a `journal` value names PostgreSQL rather than an SQLite path.
bool is_postgresql_conninfo(std::string_view spec);

// What is wrong with a connection string: not one libpq understands, or a
// password in it.
Problem check_postgresql_conninfo(std::string_view conninfo);

// "postgresql host=… port=… dbname=… user=…": the parts that say where,
// never a password.
std::string describe_conninfo(const std::string& conninfo);

}  // namespace rtm
