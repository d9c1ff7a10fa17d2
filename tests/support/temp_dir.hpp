// SPDX-License-Identifier: Apache-2.0
#pragma once

// A temporary directory for a test: the unit tests' journals and page files, the process
// tests' shared stores.

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

namespace actormq::test {

/// A temporary directory removed at the end of the test (kept with ACTORMQ_KEEP_TMP), e.g. a
/// journal that two nodes of a pair share.
struct temp_dir {
    std::string path;
    temp_dir() {
        std::string pattern = "/tmp/actormq-store-XXXXXX";
        REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        path = pattern;
    }
    ~temp_dir() {
        if (std::getenv("ACTORMQ_KEEP_TMP") == nullptr) {
            std::error_code ignored;
            std::filesystem::remove_all(path, ignored);
        }
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
};

} // namespace actormq::test
