// SPDX-License-Identifier: Apache-2.0
#include "config/load.hpp"

#include "config/convert.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <system_error>
#include <tuple>
#include <utility>

namespace actormq::config {

std::string config_error::to_string() const {
    std::string text = file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": ";
    // A TOML syntax error has no key; "FILE:LINE:COLUMN: : REASON" would only add noise.
    if (!key.empty()) {
        text += key;
        text += ": ";
    }
    text += reason;
    return text;
}

namespace {

using detail::override_file;

/// One segment of an override's key and the 1-based column where it starts.
struct located_segment {
    std::string text;
    uint32_t column = 0;
};

/// An override "KEY=VALUE" taken apart.
struct split_override {
    std::vector<located_segment> key;
    std::string value;
    uint32_t value_column = 0; ///< 1-based column of the value's first character
};

/// An error in the override at `index` (0-based): its "line" is the override's 1-based position
/// among the overrides and its column a 1-based column in that argument.
config_error override_error(size_t index, size_t column, std::string key, std::string reason) {
    return config_error{std::string{override_file}, static_cast<uint32_t>(index + 1),
                        static_cast<uint32_t>(column), std::move(key), std::move(reason)};
}

size_t skip_spaces(std::string_view text, size_t pos) {
    while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t')) {
        ++pos;
    }
    return pos;
}

std::string_view trim(std::string_view text) {
    size_t begin = skip_spaces(text, 0);
    size_t end = text.size();
    while (end > begin && (text[end - 1] == ' ' || text[end - 1] == '\t')) {
        --end;
    }
    return text.substr(begin, end - begin);
}

/// Reads the quoted key segment that starts at text[pos] with '"' or '\''. In double quotes,
/// `\"` and `\\` stand for '"' and '\'. Returns false if the closing quote is missing.
bool read_quoted(std::string_view text, size_t& pos, std::string& out) {
    char quote = text[pos++];
    while (pos < text.size()) {
        char c = text[pos++];
        if (c == quote) {
            return true;
        }
        if (quote == '"' && c == '\\' && pos < text.size()
            && (text[pos] == '"' || text[pos] == '\\')) {
            c = text[pos++];
        }
        out += c;
    }
    return false;
}

/// Reads one key segment at `pos`: quoted, or everything up to the next '.' or '='.
std::optional<located_segment>
read_segment(std::string_view text, size_t& pos, std::string& problem) {
    located_segment segment;
    segment.column = static_cast<uint32_t>(pos + 1);
    if (pos < text.size() && (text[pos] == '"' || text[pos] == '\'')) {
        if (!read_quoted(text, pos, segment.text)) {
            problem = "the quoted key segment has no closing quote";
            return std::nullopt;
        }
        return segment;
    }
    size_t end = std::min(text.find_first_of(".=", pos), text.size());
    segment.text = std::string{trim(text.substr(pos, end - pos))};
    pos = end;
    if (segment.text.empty()) {
        problem = "a key segment is empty";
        return std::nullopt;
    }
    return segment;
}

/// Splits "a.\"b.c\".d = VALUE" into its key segments and its value; reports a malformed one.
std::optional<split_override>
split(std::string_view text, size_t index, std::vector<config_error>& errors) {
    std::string key_text{trim(text.substr(0, text.find('=')))};
    if (text.find('=') == text.npos) {
        errors.push_back(override_error(index, 1, std::string{text},
                                        "expected KEY=VALUE, e.g. acceptors.stomp.port=61613"));
        return std::nullopt;
    }
    split_override result;
    size_t pos = 0;
    std::string problem;
    while (problem.empty()) {
        pos = skip_spaces(text, pos);
        auto segment = read_segment(text, pos, problem);
        if (!segment) {
            break;
        }
        result.key.push_back(std::move(*segment));
        pos = skip_spaces(text, pos);
        if (pos < text.size() && text[pos] == '.') {
            ++pos;
        } else if (pos < text.size() && text[pos] == '=') {
            pos = skip_spaces(text, pos + 1);
            result.value = std::string{trim(text.substr(pos))};
            result.value_column = static_cast<uint32_t>(pos + 1);
            return result;
        } else {
            problem = "expected '.' or '=' after a key segment";
        }
    }
    errors.push_back(override_error(index, pos + 1, key_text, problem));
    return std::nullopt;
}

/// The document "v=VALUE" laid out so that VALUE starts on line index+1 at `column`: errors
/// about the value then point into the override that gave it.
std::string value_document(size_t index, uint32_t column, std::string_view value) {
    std::string document(index, '\n');
    document += 'v';
    // 'v' takes column 1 and '=' column - 1; the key always takes at least one column before
    // the '=', so the value's column is 3 or more.
    document.append(column > 3 ? column - 3 : 0, ' ');
    document += '=';
    document += value;
    return document;
}

std::optional<toml::table> parse_single_value(const std::string& document) {
    try {
        toml::table table = toml::parse(document, override_file);
        if (table.size() == 1 && table.contains("v")) {
            return table;
        }
    } catch (const toml::parse_error&) {
        // Not a TOML value; the caller decides what that means.
    }
    return std::nullopt;
}

/// The value as a TOML value, or, if it is not one (a path, a host name, a bare word), as a
/// string. Fails only for text that is not valid UTF-8.
std::optional<toml::table> parse_value(const split_override& parsed, size_t index) {
    if (auto table = parse_single_value(value_document(index, parsed.value_column, parsed.value))) {
        return table;
    }
    auto quoted = detail::quote_string(parsed.value);
    return parse_single_value(value_document(index, parsed.value_column, quoted));
}

toml::key
located_key(const located_segment& segment, size_t index, const toml::source_path_ptr& path) {
    toml::source_region region;
    auto line = static_cast<toml::source_index>(index + 1);
    region.begin = {line, segment.column};
    region.end = {line, static_cast<toml::source_index>(segment.column + segment.text.size())};
    region.path = path;
    return toml::key{segment.text, std::move(region)};
}

/// Sets the override's key in `root` to `value`, creating the tables on the way.
void set_value(toml::table& root,
               const split_override& parsed,
               toml::node&& value,
               size_t index,
               const toml::source_path_ptr& path,
               std::vector<config_error>& errors) {
    toml::table* table = &root;
    std::string dotted;
    for (size_t i = 0; i + 1 < parsed.key.size(); ++i) {
        const auto& segment = parsed.key[i];
        dotted = detail::join_key(dotted, segment.text);
        toml::node* node = table->get(segment.text);
        if (node == nullptr) {
            node = &table->insert(located_key(segment, index, path), toml::table{}).first->second;
        }
        table = node->as_table();
        if (table == nullptr) {
            errors.push_back(override_error(index, segment.column, dotted,
                                            "is not a table, so '" + parsed.key[i + 1].text
                                                + "' cannot be set in it"));
            return;
        }
    }
    table->insert_or_assign(located_key(parsed.key.back(), index, path), std::move(value));
}

void apply_overrides(toml::table& root,
                     const std::vector<std::string>& overrides,
                     std::vector<config_error>& errors) {
    auto path = std::make_shared<const std::string>(override_file);
    for (size_t index = 0; index < overrides.size(); ++index) {
        auto parsed = split(overrides[index], index, errors);
        if (!parsed) {
            continue;
        }
        auto document = parse_value(*parsed, index);
        if (!document) {
            std::string key;
            for (const auto& segment : parsed->key) {
                key = detail::join_key(key, segment.text);
            }
            errors.push_back(override_error(index, parsed->value_column, std::move(key),
                                            "the value is not valid UTF-8"));
            continue;
        }
        set_value(root, *parsed, std::move(*document->get("v")), index, path, errors);
    }
}

/// Parses `text`; a syntax error becomes the only error, with the parser's position.
bool parse_document(std::string_view text,
                    const std::string& source_name,
                    toml::table& out,
                    std::vector<config_error>& errors) {
    try {
        out = toml::parse(text, source_name);
        return true;
    } catch (const toml::parse_error& error) {
        const auto& where = error.source().begin;
        errors.push_back(config_error{source_name, where.line, where.column, "",
                                      std::string{error.description()}});
        return false;
    }
}

/// Orders errors as an operator reads them: the file's from top to bottom, then the overrides'
/// in command-line order.
void sort_errors(std::vector<config_error>& errors, const std::string& source_name) {
    std::stable_sort(errors.begin(), errors.end(),
                     [&source_name](const config_error& lhs, const config_error& rhs) {
                         return std::make_tuple(lhs.file != source_name, lhs.line, lhs.column)
                                < std::make_tuple(rhs.file != source_name, rhs.line, rhs.column);
                     });
}

/// Applies the overrides to `root` and converts it. With `parsed` false the document could not
/// be read, so the overrides are still checked for form but nothing is converted.
load_result finish(toml::table root,
                   bool parsed,
                   const std::string& source_name,
                   const std::vector<std::string>& overrides,
                   std::vector<config_error> errors) {
    load_result result;
    result.errors = std::move(errors);
    apply_overrides(root, overrides, result.errors);
    if (parsed) {
        node_config config = detail::convert(root, source_name, result.errors);
        if (result.errors.empty()) {
            result.config = std::move(config);
        }
    }
    sort_errors(result.errors, source_name);
    return result;
}

} // namespace

load_result load_string(std::string_view text,
                        std::string_view source_name,
                        const std::vector<std::string>& overrides) {
    std::string name{source_name};
    std::vector<config_error> errors;
    toml::table root;
    bool parsed = parse_document(text, name, root, errors);
    auto result = finish(std::move(root), parsed, name, overrides, std::move(errors));
    if (result.config) {
        // Kept for colocated backups: the host parses the live's configuration again.
        result.config->source_text = std::string{text};
        result.config->source_overrides = overrides;
    }
    return result;
}

load_result load_file(const std::string& path, const std::vector<std::string>& overrides) {
    std::error_code ignored;
    if (std::filesystem::is_directory(path, ignored)) {
        std::vector<config_error> errors{
            {path, 0, 0, "", "cannot read the file: it is a directory"}};
        return finish(toml::table{}, false, path, overrides, std::move(errors));
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        std::string reason = "cannot open the file: " + std::generic_category().message(errno);
        std::vector<config_error> errors{{path, 0, 0, "", std::move(reason)}};
        return finish(toml::table{}, false, path, overrides, std::move(errors));
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) {
        std::vector<config_error> errors{{path, 0, 0, "", "cannot read the file"}};
        return finish(toml::table{}, false, path, overrides, std::move(errors));
    }
    return load_string(text.str(), path, overrides);
}

} // namespace actormq::config
