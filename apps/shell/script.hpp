// SPDX-License-Identifier: Apache-2.0
#pragma once

// The shell's command language (docs/shell.md, "Scripts"): one command per line, words split at
// blanks, "double quotes" keep blanks, `#` starts a comment, a trailing `\` continues the line,
// ${VAR} is expanded when the line runs. Every line of a script is parsed and checked against the
// command table before the first one runs, so a syntax error stops the script at FILE:LINE with
// nothing started.

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace actormq::shell {

/// Where a line came from, for messages: "FILE:LINE".
struct location {
    std::string file;
    int line = 0;

    std::string to_string() const { return file + ":" + std::to_string(line); }
};

/// One option a command accepts.
struct option_spec {
    std::string name; ///< without the leading "--"
    bool takes_value = false;
    bool repeatable = false; ///< e.g. --set k=v --set k2=v2
};

/// One command of the shell: its name, its words and its options.
struct command_spec {
    std::string name;
    /// The usage line printed on bad arguments, e.g. "start NAME CONFIG [--set KEY=VALUE ...]".
    std::string usage;
    /// One sentence for `help`.
    std::string summary;
    size_t min_words = 0; ///< positional words after the command name
    size_t max_words = 0; ///< SIZE_MAX for "any number"
    std::vector<option_spec> options;
};

/// The command table, in the order `help` lists it (docs/shell.md describes each command).
const std::vector<command_spec>& commands();

/// The spec of `name`, or nullptr for an unknown command.
const command_spec* find_command(const std::string& name);

/// A parsed command: positional words and options, before ${VAR} expansion.
struct invocation {
    location where;
    /// The line as written (for the script's trace).
    std::string text;
    const command_spec* spec = nullptr;
    std::vector<std::string> words;
    /// Option name -> values (a flag without value has one empty value).
    std::multimap<std::string, std::string> options;

    bool has(const std::string& option) const { return options.count(option) > 0; }

    /// The last value of `option`, or nullopt.
    std::optional<std::string> value(const std::string& option) const;

    /// Every value of `option`, in order.
    std::vector<std::string> values(const std::string& option) const;
};

/// What parsing one line gave: nothing (blank or comment), a command, or an error.
struct parse_result {
    std::optional<invocation> command;
    /// "" on success; otherwise the reason, and for argument errors the usage line after it.
    std::string error;
};

/// Splits `text` into words (quotes, comments); an unterminated quote is an error.
bool split_words(const std::string& text, std::vector<std::string>& out, std::string& error);

/// Parses one line: splits it, looks the command up and checks its words and options.
parse_result parse_line(const std::string& text, const location& where);

/// Parses a whole script; on the first error returns it as "FILE:LINE: error: ...".
struct script {
    std::vector<invocation> lines;
    std::string error;
};
script parse_script(const std::string& text, const std::string& file);

/// Expands ${NAME} in `text` with `lookup` (nullopt: unknown variable, reported in `error`).
/// `$$` is a literal `$`.
template <class Lookup>
bool expand(const std::string& text, Lookup&& lookup, std::string& out, std::string& error) {
    out.clear();
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '$' || i + 1 >= text.size()) {
            out += text[i];
            continue;
        }
        if (text[i + 1] == '$') {
            out += '$';
            ++i;
            continue;
        }
        if (text[i + 1] != '{') {
            out += text[i];
            continue;
        }
        auto end = text.find('}', i + 2);
        if (end == std::string::npos) {
            error = "unterminated ${ in '" + text + "'";
            return false;
        }
        auto name = text.substr(i + 2, end - i - 2);
        std::optional<std::string> v = lookup(name);
        if (!v) {
            error = "unknown variable ${" + name + "}";
            return false;
        }
        out += *v;
        i = end;
    }
    return true;
}

/// Parses "10s", "500ms", "2m" or a plain number of seconds into milliseconds.
std::optional<long long> parse_duration_ms(const std::string& text);

/// Parses a non-negative decimal integer.
std::optional<unsigned long long> parse_count(const std::string& text);

} // namespace actormq::shell
