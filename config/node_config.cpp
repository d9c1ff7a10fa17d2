// SPDX-License-Identifier: Apache-2.0
#include "config/node_config.hpp"

#include <cstddef>
#include <utility>
#include <vector>

namespace actormq::config {

namespace {

/// Splits `text` at every '.'; "a..b" yields an empty middle word and "" yields one empty word.
std::vector<std::string_view> split_words(std::string_view text) {
    std::vector<std::string_view> words;
    size_t start = 0;
    while (true) {
        size_t dot = text.find('.', start);
        if (dot == std::string_view::npos) {
            words.push_back(text.substr(start));
            return words;
        }
        words.push_back(text.substr(start, dot - start));
        start = dot + 1;
    }
}

bool is_wildcard_word(std::string_view word) {
    return word == "*" || word == "#";
}

/// How specific a matching pattern is; compared by `more_specific`.
struct specificity {
    size_t wildcards = 0; ///< words that are '*' or '#'
    size_t length = 0;    ///< characters in the pattern
    size_t hashes = 0;    ///< words that are '#', which match more than '*'
};

specificity specificity_of(std::string_view pattern) {
    specificity result;
    result.length = pattern.size();
    for (auto word : split_words(pattern)) {
        if (is_wildcard_word(word)) {
            ++result.wildcards;
        }
        if (word == "#") {
            ++result.hashes;
        }
    }
    return result;
}

/// An exact name (no wildcard) beats any wildcard, then fewer wildcards win, then the longer
/// pattern, then the one with fewer '#' (so "a.*" beats "a.#"). Equal ones keep file order.
bool more_specific(const specificity& lhs, const specificity& rhs) {
    if (lhs.wildcards != rhs.wildcards) {
        return lhs.wildcards < rhs.wildcards;
    }
    if (lhs.length != rhs.length) {
        return lhs.length > rhs.length;
    }
    return lhs.hashes < rhs.hashes;
}

} // namespace

bool wildcard_match(std::string_view pattern, std::string_view address) {
    auto pat = split_words(pattern);
    auto addr = split_words(address);
    // matches[j] says whether pat[i..] matches addr[j..] for the current i, computed from the
    // last pattern word backwards; a table instead of recursion keeps "#.#.#" patterns linear.
    std::vector<char> next(addr.size() + 1, 0);
    next[addr.size()] = 1;
    for (size_t i = pat.size(); i-- > 0;) {
        std::vector<char> matches(addr.size() + 1, 0);
        for (size_t j = addr.size() + 1; j-- > 0;) {
            if (pat[i] == "#") {
                // '#' takes no word here, or takes addr[j] and stays.
                matches[j] = next[j] || (j < addr.size() && matches[j + 1]);
            } else if (j < addr.size() && (pat[i] == "*" || pat[i] == addr[j])) {
                matches[j] = next[j + 1];
            }
        }
        next = std::move(matches);
    }
    return next[0] != 0;
}

address_settings node_config::settings_for(std::string_view address) const {
    const address_settings* best = nullptr;
    specificity best_rank;
    for (const auto& entry : address_settings_list) {
        if (!wildcard_match(entry.match, address)) {
            continue;
        }
        auto rank = specificity_of(entry.match);
        if (best == nullptr || more_specific(rank, best_rank)) {
            best = &entry;
            best_rank = rank;
        }
    }
    if (best == nullptr) {
        return address_settings{};
    }
    return *best;
}

} // namespace actormq::config
