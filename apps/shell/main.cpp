// SPDX-License-Identifier: Apache-2.0
// actormq-shell (docs/shell.md): starts, breaks and watches ActorMQ nodes. Interactive with
// GNU readline (line editing, history, command completion), or `--script FILE`, which checks
// the whole file first and then runs it, stopping with exit code 1 at the first failed command.
#include "apps/shell/child.hpp"
#include "apps/shell/shell.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <readline/history.h>
#include <readline/readline.h>
#include <sstream>
#include <string>
#include <unistd.h>

namespace {

namespace fs = std::filesystem;
using actormq::shell::shell;
using actormq::shell::shell_options;

constexpr const char* usage =
    "usage: actormq-shell [--script FILE] [--user USER --password PASSWORD]\n"
    "                     [--stomp-user USER --stomp-password PASSWORD] [--keep-tmp] [--quiet]\n";

/// Exit codes: a command or check failed; bad command line or script syntax.
constexpr int exit_failed = 1;
constexpr int exit_usage = 2;

struct cli {
    shell_options opts;
    std::string script;
    bool quiet = false;
};

std::string env_or(const char* name, const std::string& fallback) {
    const char* v = std::getenv(name);
    return v != nullptr ? std::string{v} : fallback;
}

/// The node binary: $ACTORMQ_NODE, else actormq-node next to this program.
std::string default_node_binary() {
    std::error_code ec;
    auto self = fs::read_symlink("/proc/self/exe", ec);
    return env_or("ACTORMQ_NODE",
                  ec ? "actormq-node" : (self.parent_path() / "actormq-node").string());
}

/// Parses argv; prints usage and returns false on anything it does not understand.
bool parse_cli(int argc, char** argv, cli& out) {
    auto& o = out.opts;
    o.cluster_user = env_or("ACTORMQ_CLUSTER_USER", "");
    o.cluster_password = env_or("ACTORMQ_CLUSTER_PASSWORD", "");
    o.stomp_login = env_or("ACTORMQ_STOMP_USER", "");
    o.stomp_passcode = env_or("ACTORMQ_STOMP_PASSWORD", "");
    o.keep_tmp = std::getenv("ACTORMQ_KEEP_TMP") != nullptr;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        bool has_value = i + 1 < argc;
        if (a == "--help" || a == "-h") {
            std::fputs(usage, stdout);
            std::exit(0);
        } else if (a == "--keep-tmp") {
            o.keep_tmp = true;
        } else if (a == "--quiet") {
            out.quiet = true;
        } else if (a == "--script" && has_value) {
            out.script = argv[++i];
        } else if (a == "--user" && has_value) {
            o.cluster_user = argv[++i];
        } else if (a == "--password" && has_value) {
            o.cluster_password = argv[++i];
        } else if (a == "--stomp-user" && has_value) {
            o.stomp_login = argv[++i];
        } else if (a == "--stomp-password" && has_value) {
            o.stomp_passcode = argv[++i];
        } else {
            std::fprintf(stderr, "actormq-shell: unknown or incomplete argument '%s'\n%s",
                         a.c_str(), usage);
            return false;
        }
    }
    return true;
}

/// SIGINT, SIGTERM and SIGHUP end the shell, and with it every node it started.
extern "C" void on_stop_signal(int sig) {
    actormq::shell::kill_all_children();
    ::_exit(128 + sig);
}

void install_signal_handlers() {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
        ::sigaction(sig, &sa, nullptr);
    }
    // A node that closes a STOMP socket under a write must not kill the shell.
    std::signal(SIGPIPE, SIG_IGN);
}

/// Whether the command carries a password (login, stomp-login): never echoed or kept.
bool has_secret(const actormq::shell::invocation& inv) {
    return inv.spec != nullptr && (inv.spec->name == "login" || inv.spec->name == "stomp-login");
}

/// The line as the trace shows it: the password of login / stomp-login masked.
std::string traced(const actormq::shell::invocation& inv) {
    if (!has_secret(inv) || inv.words.empty()) {
        return inv.text;
    }
    return std::string{inv.spec->name} + " " + inv.words.front() + " ****";
}

/// Runs a script's text: parse all of it, then run line by line.
int run_script(shell& sh, const std::string& text, const std::string& file, bool quiet) {
    auto parsed = actormq::shell::parse_script(text, file);
    if (!parsed.error.empty()) {
        std::fprintf(stderr, "%s\n", parsed.error.c_str());
        return exit_usage;
    }
    for (const auto& line : parsed.lines) {
        if (!quiet) {
            std::printf("%s: %s\n", line.where.to_string().c_str(), traced(line).c_str());
            std::fflush(stdout);
        }
        auto err = sh.run(line);
        std::fflush(stdout);
        if (!err.empty()) {
            std::fprintf(stderr, "%s: error: %s\n", line.where.to_string().c_str(), err.c_str());
            return exit_failed;
        }
        if (sh.quit_requested()) {
            break;
        }
    }
    return 0;
}

/// Completes command names at the start of a line.
char* command_generator(const char* text, int state) {
    static size_t index = 0;
    if (state == 0) {
        index = 0;
    }
    const auto& all = actormq::shell::commands();
    size_t len = std::strlen(text);
    while (index < all.size()) {
        const auto& name = all[index++].name;
        if (name.compare(0, len, text) == 0) {
            return ::strdup(name.c_str());
        }
    }
    return nullptr;
}

char** complete(const char* text, int start, int) {
    rl_attempted_completion_over = start == 0 ? 1 : 0;
    return start == 0 ? rl_completion_matches(text, command_generator) : nullptr;
}

std::string history_path() {
    const char* home = std::getenv("HOME");
    return home != nullptr ? std::string{home} + "/.actormq_shell_history" : std::string{};
}

/// The interactive loop: readline with history; a failed command prints its error and the
/// shell goes on. The exit code says whether the last command failed.
int run_interactive(shell& sh) {
    auto hist = history_path();
    if (!hist.empty()) {
        ::read_history(hist.c_str());
    }
    rl_attempted_completion_function = complete;
    std::printf("actormq-shell: type help for the commands, quit or Ctrl-D to leave "
                "(nodes started here are killed on exit)\n");
    int rc = 0;
    int number = 0;
    while (!sh.quit_requested()) {
        char* raw = ::readline("actormq> ");
        if (raw == nullptr) {
            std::printf("\n");
            break;
        }
        std::string line{raw};
        std::free(raw);
        ++number;
        auto parsed = actormq::shell::parse_line(line, {"<stdin>", number});
        if (!parsed.error.empty() || (parsed.command && !has_secret(*parsed.command))) {
            ::add_history(line.c_str());
        }
        if (!parsed.error.empty()) {
            std::fprintf(stderr, "error: %s\n", parsed.error.c_str());
            rc = exit_failed;
            continue;
        }
        if (!parsed.command) {
            continue;
        }
        auto err = sh.run(*parsed.command);
        rc = err.empty() ? 0 : exit_failed;
        if (!err.empty()) {
            std::fprintf(stderr, "error: %s\n", err.c_str());
        }
    }
    if (!hist.empty()) {
        ::write_history(hist.c_str());
        ::history_truncate_file(hist.c_str(), 1000);
    }
    return rc;
}

} // namespace

int main(int argc, char** argv) {
    cli args;
    if (!parse_cli(argc, argv, args)) {
        return exit_usage;
    }
    args.opts.node_binary = default_node_binary();
    std::string text;
    std::string file = args.script;
    if (!args.script.empty()) {
        std::ifstream in{args.script};
        if (!in) {
            std::fprintf(stderr, "actormq-shell: cannot read %s\n%s", args.script.c_str(), usage);
            return exit_usage;
        }
        std::stringstream buf;
        buf << in.rdbuf();
        text = buf.str();
        args.opts.base_dir = fs::absolute(args.script).parent_path().string();
    } else {
        args.opts.base_dir = fs::current_path().string();
        if (::isatty(STDIN_FILENO) == 0) {
            std::stringstream buf;
            buf << std::cin.rdbuf();
            text = buf.str();
            file = "<stdin>";
        }
    }
    install_signal_handlers();
    shell sh{args.opts};
    if (sh.tmp_dir().empty()) {
        std::fprintf(stderr, "actormq-shell: cannot create a temporary directory\n");
        return exit_failed;
    }
    if (!file.empty()) {
        return run_script(sh, text, file, args.quiet);
    }
    return run_interactive(sh);
}
