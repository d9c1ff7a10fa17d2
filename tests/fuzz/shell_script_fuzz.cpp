// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the actormq-shell script parser (docs/fuzzing.md). The input is a whole
// script; it goes through parse_script, the check `--script` runs before anything starts, and
// the harness checks that
//   - a script either fails with "FILE:LINE: syntax error: ..." and no commands, or gives
//     commands whose line numbers rise and lie within the script,
//   - every command fits its spec: a known command, a word count within its limits, only its
//     own options, each non-repeatable one at most once,
//   - parsing a command's text again (continuation lines already joined) gives the same
//     command, and
//   - the run-time helpers the shell applies to those words (${VAR} expansion, durations,
//     counts) neither throw nor change a word without a '$'.
// Nothing is run: no process is spawned and no socket is opened.
#include "apps/shell/script.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

namespace {

using namespace actormq::shell;

const std::string script_file = "fuzz.amqsh";

// Aborts, which libFuzzer reports as a crash with the input that caused it.
void require(bool ok) {
    if (!ok) {
        std::abort();
    }
}

int count_lines(const std::string& text) {
    int lines = 0;
    for (char c : text) {
        lines += c == '\n' ? 1 : 0;
    }
    return lines + (text.empty() || text.back() == '\n' ? 0 : 1);
}

// A few names the shell would know at run time; everything else is unknown.
std::optional<std::string> lookup(const std::string& name) {
    if (name == "TMP") {
        return std::string{"/tmp/actormq-shell.x"};
    }
    if (name == "a.stomp") {
        return std::string{"61613"};
    }
    if (name.empty()) {
        return std::string{};
    }
    return std::nullopt;
}

void check_expand(const std::string& word) {
    std::string out;
    std::string error;
    bool ok = expand(word, lookup, out, error);
    require(ok == error.empty());
    if (word.find('$') == std::string::npos) {
        require(ok && out == word);
    }
    parse_duration_ms(word);
    parse_count(word);
}

void check_spec(const invocation& inv) {
    require(inv.spec != nullptr);
    require(find_command(inv.spec->name) == inv.spec);
    require(inv.words.size() >= inv.spec->min_words);
    require(inv.words.size() <= inv.spec->max_words);
    for (const auto& [name, value] : inv.options) {
        const option_spec* spec = nullptr;
        for (const auto& o : inv.spec->options) {
            spec = o.name == name ? &o : spec;
        }
        require(spec != nullptr);
        require(spec->repeatable || inv.options.count(name) == 1);
        require(spec->takes_value || value.empty());
        check_expand(value);
    }
    for (const auto& w : inv.words) {
        check_expand(w);
    }
}

void check_reparse(const invocation& inv) {
    auto again = parse_line(inv.text, inv.where);
    require(again.error.empty() && again.command.has_value());
    require(again.command->spec == inv.spec);
    require(again.command->words == inv.words);
    require(again.command->options == inv.options);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    auto parsed = parse_script(text, script_file);
    int lines = count_lines(text);
    if (!parsed.error.empty()) {
        require(parsed.lines.empty());
        require(parsed.error.compare(0, script_file.size() + 1, script_file + ":") == 0);
        int line = std::atoi(parsed.error.c_str() + script_file.size() + 1);
        require(line >= 1 && line <= lines);
        require(parsed.error.find(": syntax error: ") != std::string::npos);
        return 0;
    }
    int previous = 0;
    for (const auto& inv : parsed.lines) {
        require(inv.where.file == script_file);
        require(inv.where.line > previous && inv.where.line <= lines);
        previous = inv.where.line;
        check_spec(inv);
        check_reparse(inv);
    }
    return 0;
}
