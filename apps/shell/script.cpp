// SPDX-License-Identifier: Apache-2.0
#include "apps/shell/script.hpp"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdint>
#include <sstream>

namespace actormq::shell {

namespace {

constexpr size_t any = SIZE_MAX;

const option_spec timeout_opt{"timeout", true, false};
/// `--count N` of the `log` condition: at least N matching lines.
const option_spec count_opt{"count", true, false};

/// The conditions of `wait` and `assert`: name and the number of words after it.
struct condition_spec {
    const char* name;
    size_t words;
    const char* usage;
};

const std::vector<condition_spec>& conditions() {
    static const std::vector<condition_spec> all{
        {"role", 2, "role NODE ROLE"},
        {"depth", 3, "depth NODE QUEUE COUNT"},
        {"log", 2, "log NODE TEXT [--count N]"},
        {"gone", 1, "gone NODE"},
        {"up", 1, "up NODE"},
    };
    return all;
}

std::string condition_usages() {
    std::string out;
    for (const auto& c : conditions()) {
        out += out.empty() ? "" : " | ";
        out += c.usage;
    }
    return out;
}

/// Checks the words of a `wait` / `assert` condition; "" when they fit one condition.
std::string check_condition(const std::vector<std::string>& words) {
    for (const auto& c : conditions()) {
        if (words[0] == c.name) {
            if (words.size() - 1 != c.words) {
                return std::string{"condition '"} + c.name + "' takes " + c.usage;
            }
            return "";
        }
    }
    return "unknown condition '" + words[0] + "' (one of: " + condition_usages() + ")";
}

std::vector<command_spec> make_commands() {
    return {
        {"help", "help [COMMAND]", "lists the commands, or shows one command's usage", 0, 1, {}},
        {"login",
         "login USER PASSWORD",
         "sets the cluster credentials used to reach the nodes' management",
         2,
         2,
         {}},
        {"stomp-login",
         "stomp-login USER PASSWORD",
         "sets the STOMP login used by send and receive",
         2,
         2,
         {}},
        {"start",
         "start NAME CONFIG [--set KEY=VALUE ...] [--no-proxy] [--timeout DURATION]",
         "starts actormq-node with CONFIG as a child process called NAME",
         2,
         2,
         {{"set", true, true}, {"no-proxy"}, timeout_opt}},
        {"restart",
         "restart NAME [--timeout DURATION]",
         "starts a stopped or killed node again: same config, overrides and ports",
         1,
         1,
         {timeout_opt}},
        {"connect",
         "connect NAME HOST:PORT [--stomp PORT]",
         "manages a node that runs elsewhere, through its cluster port",
         2,
         2,
         {{"stomp", true, false}}},
        {"stop",
         "stop NAME [--timeout DURATION]",
         "stops a child node with SIGTERM and waits for it to exit",
         1,
         1,
         {timeout_opt}},
        {"kill", "kill NAME", "kills a child node with SIGKILL", 1, 1, {}},
        {"freeze",
         "freeze NAME",
         "stops a child node with SIGSTOP: it keeps its sockets but does nothing",
         1,
         1,
         {}},
        {"thaw", "thaw NAME", "lets a frozen child node run again (SIGCONT)", 1, 1, {}},
        {"partition",
         "partition NODE NODE",
         "cuts every cluster link between two child nodes (both keep running)",
         2,
         2,
         {}},
        {"heal",
         "heal [NODE NODE]",
         "restores the links between two nodes, or every cut link",
         0,
         2,
         {}},
        {"links",
         "links",
         "lists the cluster links the shell runs through its proxies, and which are cut",
         0,
         0,
         {}},
        {"nodes", "nodes", "lists the nodes, their ports and their instances with roles", 0, 0, {}},
        {"queues",
         "queues [NODE]",
         "shows each queue with its depth, in flight and consumers",
         0,
         1,
         {}},
        {"events",
         "events NODE [--since N]",
         "shows a node's event log",
         1,
         1,
         {{"since", true, false}}},
        {"status", "status NODE", "prints a node's /api/status JSON", 1, 1, {}},
        {"send",
         "send NODE DESTINATION COUNT [--persistent] [--receipts] [--dup-ids PREFIX] "
         "[--body TEXT] [--native] [--timeout DURATION]",
         "sends COUNT messages over STOMP (--native: the native client, to a queue)",
         3,
         3,
         {{"persistent"},
          {"receipts"},
          {"native"},
          {"dup-ids", true, false},
          {"body", true, false},
          timeout_opt}},
        {"receive",
         "receive NODE DESTINATION COUNT|all [--unique] [--native] [--timeout DURATION]",
         "receives and acknowledges COUNT messages (or all a queue holds) over STOMP "
         "(--native: the native client)",
         3,
         3,
         {{"unique"}, {"native"}, timeout_opt}},
        {"verdict",
         "verdict [DESTINATION]",
         "counts lost, duplicated and unexpected messages of what send and receive did; "
         "fails if any",
         0,
         1,
         {}},
        {"wait",
         "wait CONDITION [--timeout DURATION]   CONDITION: " + condition_usages(),
         "polls until the condition holds; fails at the deadline",
         2,
         4,
         {timeout_opt, count_opt}},
        {"assert",
         "assert CONDITION   CONDITION: " + condition_usages(),
         "checks the condition once; fails if it does not hold",
         2,
         4,
         {count_opt}},
        {"log", "log NODE [LINES]", "shows the tail of a child node's log", 1, 2, {}},
        {"echo", "echo [WORD ...]", "prints its words", 0, any, {}},
        {"quit", "quit", "kills the child nodes and leaves the shell", 0, 0, {}},
    };
}

const option_spec* find_option(const command_spec& spec, const std::string& name) {
    for (const auto& o : spec.options) {
        if (o.name == name) {
            return &o;
        }
    }
    return nullptr;
}

/// Sorts the words after the command name into positional words and options.
std::string take_arguments(const std::vector<std::string>& words, invocation& inv) {
    const auto& spec = *inv.spec;
    for (size_t i = 1; i < words.size(); ++i) {
        const auto& w = words[i];
        if (w.size() < 3 || w.compare(0, 2, "--") != 0 || spec.name == "echo") {
            inv.words.push_back(w);
            continue;
        }
        const auto* opt = find_option(spec, w.substr(2));
        if (opt == nullptr) {
            return "unknown option '" + w + "'";
        }
        if (!opt->repeatable && inv.has(opt->name)) {
            return "option '" + w + "' given twice";
        }
        if (opt->takes_value && i + 1 >= words.size()) {
            return "option '" + w + "' needs a value";
        }
        inv.options.emplace(opt->name, opt->takes_value ? words[++i] : std::string{});
    }
    if (inv.words.size() < spec.min_words || inv.words.size() > spec.max_words) {
        return "wrong number of arguments";
    }
    if (spec.name == "wait" || spec.name == "assert") {
        if (inv.has("count") && inv.words[0] != "log") {
            return "--count belongs to the condition 'log' only";
        }
        return check_condition(inv.words);
    }
    if (spec.name == "heal" && inv.words.size() == 1) {
        return "heal takes two nodes, or none for every link";
    }
    return "";
}

} // namespace

const std::vector<command_spec>& commands() {
    static const std::vector<command_spec> all = make_commands();
    return all;
}

const command_spec* find_command(const std::string& name) {
    for (const auto& c : commands()) {
        if (c.name == name) {
            return &c;
        }
    }
    if (name == "exit") {
        return find_command("quit");
    }
    return nullptr;
}

std::optional<std::string> invocation::value(const std::string& option) const {
    std::optional<std::string> out;
    auto range = options.equal_range(option);
    for (auto it = range.first; it != range.second; ++it) {
        out = it->second;
    }
    return out;
}

std::vector<std::string> invocation::values(const std::string& option) const {
    std::vector<std::string> out;
    auto range = options.equal_range(option);
    for (auto it = range.first; it != range.second; ++it) {
        out.push_back(it->second);
    }
    return out;
}

bool split_words(const std::string& text, std::vector<std::string>& out, std::string& error) {
    out.clear();
    size_t i = 0;
    while (i < text.size()) {
        if (std::isspace(static_cast<unsigned char>(text[i])) != 0) {
            ++i;
            continue;
        }
        if (text[i] == '#') {
            break;
        }
        std::string word;
        bool quoted = false;
        while (i < text.size()
               && (quoted || std::isspace(static_cast<unsigned char>(text[i])) == 0)) {
            char c = text[i++];
            if (c == '"') {
                quoted = !quoted;
            } else if (quoted && c == '\\' && i < text.size()) {
                word += text[i++];
            } else {
                word += c;
            }
        }
        if (quoted) {
            error = "unterminated quote";
            return false;
        }
        out.push_back(std::move(word));
    }
    return true;
}

parse_result parse_line(const std::string& text, const location& where) {
    parse_result out;
    std::vector<std::string> words;
    if (!split_words(text, words, out.error)) {
        return out;
    }
    if (words.empty()) {
        return out;
    }
    invocation inv;
    inv.where = where;
    inv.text = text;
    inv.spec = find_command(words[0]);
    if (inv.spec == nullptr) {
        out.error = "unknown command '" + words[0] + "' (try: help)";
        return out;
    }
    if (auto err = take_arguments(words, inv); !err.empty()) {
        out.error = inv.spec->name + ": " + err + "\nusage: " + inv.spec->usage;
        return out;
    }
    out.command = std::move(inv);
    return out;
}

script parse_script(const std::string& text, const std::string& file) {
    script out;
    std::istringstream in{text};
    std::string line;
    int number = 0;
    while (std::getline(in, line)) {
        ++number;
        location where{file, number};
        // A line ending in a backslash goes on on the next one; the command keeps its first
        // line's number.
        while (!line.empty() && line.back() == '\\') {
            line.pop_back();
            std::string next;
            if (!std::getline(in, next)) {
                break;
            }
            ++number;
            line += " " + next;
        }
        auto parsed = parse_line(line, where);
        if (!parsed.error.empty()) {
            out.error = where.to_string() + ": syntax error: " + parsed.error;
            out.lines.clear();
            return out;
        }
        if (parsed.command) {
            out.lines.push_back(std::move(*parsed.command));
        }
    }
    return out;
}

std::optional<long long> parse_duration_ms(const std::string& text) {
    size_t digits = 0;
    while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits])) != 0) {
        ++digits;
    }
    if (digits == 0 || digits > 9) {
        return std::nullopt;
    }
    long long n = std::stoll(text.substr(0, digits));
    auto unit = text.substr(digits);
    if (unit.empty() || unit == "s") {
        return n * 1000;
    }
    if (unit == "ms") {
        return n;
    }
    if (unit == "m") {
        return n * 60 * 1000;
    }
    return std::nullopt;
}

std::optional<unsigned long long> parse_count(const std::string& text) {
    if (text.empty() || text.size() > 12 || !std::all_of(text.begin(), text.end(), [](char c) {
            return std::isdigit(static_cast<unsigned char>(c)) != 0;
        })) {
        return std::nullopt;
    }
    return std::stoull(text);
}

} // namespace actormq::shell
