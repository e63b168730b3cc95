// fuzz_check.h — FUZZ_CHECK(cond, what): the fuzz targets' assertion. On
// failure it prints what was expected and aborts, which libFuzzer reports
// as a crash and saves the input (NDEBUG builds keep it, unlike assert).
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond, what)                                                                    \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            std::fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed: %s\n", __FILE__, __LINE__, #cond, \
                         what);                                                                   \
            std::abort();                                                                         \
        }                                                                                         \
    } while (0)
