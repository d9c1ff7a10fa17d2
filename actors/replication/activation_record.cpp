// SPDX-License-Identifier: Apache-2.0
#include "actors/replication/activation_record.hpp"

#include "actors/storage/durable_file.hpp"

#include <charconv>
#include <filesystem>
#include <sstream>
#include <system_error>

namespace actormq::replication {

namespace {

constexpr const char* header = "actormq-activation 1";

} // namespace

std::string read_activation(const std::string& directory, activation_record& out) {
    out = {};
    auto path = (std::filesystem::path{directory} / activation_file_name).string();
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
        return ec ? "file=" + path + " op=stat error=" + ec.message() : std::string{};
    }
    std::string bytes;
    if (!storage::read_whole(path, bytes)) {
        return "file=" + path + " op=read";
    }
    std::istringstream in{bytes};
    std::string line;
    activation_record rec;
    bool have_sequence = false;
    for (int number = 1; std::getline(in, line); ++number) {
        auto bad = [&](const char* why) {
            return "file=" + path + " line=" + std::to_string(number) + " error=\"" + why + "\"";
        };
        if (number == 1) {
            if (line != header) {
                return bad("not an activation record (no 'actormq-activation 1' header)");
            }
            continue;
        }
        auto space = line.find(' ');
        auto key = line.substr(0, space);
        auto value = space == std::string::npos ? std::string{} : line.substr(space + 1);
        if (key == "node-id" && !value.empty()) {
            rec.node_id = value;
        } else if (key == "sequence") {
            auto [end, err] =
                std::from_chars(value.data(), value.data() + value.size(), rec.sequence);
            if (err != std::errc{} || end != value.data() + value.size() || value.empty()) {
                return bad("the sequence is not a number");
            }
            have_sequence = true;
        } else if (!line.empty()) {
            return bad("unknown line");
        }
    }
    if (rec.node_id.empty() || !have_sequence) {
        return "file=" + path + " error=\"the node-id or the sequence line is missing\"";
    }
    out = std::move(rec);
    return {};
}

std::string write_activation(const std::string& directory, const activation_record& rec) {
    auto path = (std::filesystem::path{directory} / activation_file_name).string();
    std::string bytes = std::string{header} + "\nnode-id " + rec.node_id + "\nsequence "
                        + std::to_string(rec.sequence) + "\n";
    return storage::replace_file(directory, path, bytes);
}

} // namespace actormq::replication
