// SPDX-License-Identifier: Apache-2.0
#include "actors/journal/journal_store.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <sys/mman.h>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>
#include <utility>

namespace actormq::journal {

namespace {

namespace fs = std::filesystem;

// Segment header: magic, u32 format version, u64 file_seq, zeros up to 64 bytes.
constexpr uint64_t segment_header_bytes = segment_header_size;
constexpr char segment_magic[8] = {'A', 'C', 'T', 'O', 'R', 'M', 'Q', 'J'};
constexpr uint32_t segment_version = 1;
constexpr size_t version_offset = 8;
constexpr size_t seq_offset = 12;

// A segment is created under this suffix and renamed into place once it is zero-filled and
// synced, so a crash while creating one never leaves a half-written file under a real name.
constexpr std::string_view temp_suffix = ".tmp";

constexpr size_t zero_chunk_bytes = 1024 * 1024;

[[noreturn]] void throw_os(const std::string& op, const std::string& path) {
    throw io_error(errno, op, path);
}

struct errno_entry {
    const char* name;
    int value;
};

// The errnos a test may inject: what a disk, a full file system or a lost device report.
constexpr errno_entry injectable_errnos[] = {
    {"EIO", EIO},     {"ENOSPC", ENOSPC}, {"EDQUOT", EDQUOT},
    {"EROFS", EROFS}, {"EFBIG", EFBIG},   {"ENODEV", ENODEV},
};

int open_fd(const std::string& path, int flags) {
    int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
    if (fd < 0) {
        throw_os("open", path);
    }
    return fd;
}

void close_fd(int& fd) {
    if (fd >= 0) {
        ::close(fd);
        fd = -1;
    }
}

void pwrite_all(int fd, const char* data, size_t size, uint64_t offset, const std::string& path) {
    while (size > 0) {
        ssize_t n = ::pwrite(fd, data, size, static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            throw_os("pwrite", path);
        }
        data += n;
        size -= static_cast<size_t>(n);
        offset += static_cast<uint64_t>(n);
    }
}

void pread_all(int fd, char* data, size_t size, uint64_t offset, const std::string& path) {
    while (size > 0) {
        ssize_t n = ::pread(fd, data, size, static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n == 0) {
            errno = EIO;
            throw_os("pread (unexpected end of file)", path);
        }
        if (n < 0) {
            throw_os("pread", path);
        }
        data += n;
        size -= static_cast<size_t>(n);
        offset += static_cast<uint64_t>(n);
    }
}

// Writes real zeros (not a hole), so the blocks are allocated before the hot path needs them.
void zero_fill(int fd, uint64_t from, uint64_t to, const std::string& path) {
    static const std::vector<char> zeros(zero_chunk_bytes);
    while (from < to) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(to - from, zeros.size()));
        pwrite_all(fd, zeros.data(), n, from, path);
        from += n;
    }
}

void datasync(int fd, const std::string& path) {
    if (::fdatasync(fd) != 0) {
        throw_os("fdatasync", path);
    }
}

void fsync_directory(const std::string& path) {
    int fd = open_fd(path, O_RDONLY | O_DIRECTORY);
    int rc = ::fsync(fd);
    int saved = errno;
    ::close(fd);
    if (rc != 0) {
        errno = saved;
        throw_os("fsync", path);
    }
}

uint64_t file_size_of(int fd, const std::string& path) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        throw_os("fstat", path);
    }
    return static_cast<uint64_t>(st.st_size);
}

// Creates `dir` and any missing parents, syncing each parent so the new entries survive a
// crash.
void make_directories(const fs::path& dir) {
    std::vector<fs::path> missing;
    for (auto p = dir; !p.empty() && !fs::exists(p); p = p.parent_path()) {
        missing.push_back(p);
        if (p == p.parent_path()) {
            break;
        }
    }
    for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
        if (::mkdir(it->c_str(), 0755) != 0 && errno != EEXIST) {
            throw_os("mkdir", it->string());
        }
        fsync_directory(it->parent_path().empty() ? "." : it->parent_path().string());
    }
}

uint64_t get_le(const char* p, int bytes) {
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) {
        v = (v << 8) | static_cast<unsigned char>(p[i]);
    }
    return v;
}

void put_le(char* p, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) {
        p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
    }
}

std::string segment_header(uint64_t seq) {
    std::string h(segment_header_bytes, '\0');
    std::memcpy(h.data(), segment_magic, sizeof segment_magic);
    put_le(h.data() + version_offset, segment_version, 4);
    put_le(h.data() + seq_offset, seq, 8);
    return h;
}

// Why a segment header is bad, or an empty string if it is good.
std::string header_problem(const char* data, uint64_t size, uint64_t seq) {
    if (size < segment_header_bytes) {
        return "the file is " + std::to_string(size) + " bytes, shorter than the "
               + std::to_string(segment_header_bytes) + "-byte header";
    }
    if (std::memcmp(data, segment_magic, sizeof segment_magic) != 0) {
        return "the magic is not ACTORMQJ";
    }
    if (auto v = get_le(data + version_offset, 4); v != segment_version) {
        return "unsupported format version " + std::to_string(v);
    }
    if (auto s = get_le(data + seq_offset, 8); s != seq) {
        return "the header names segment " + std::to_string(s);
    }
    return {};
}

// What store::open needs to know to scan one segment.
struct scan_input {
    uint64_t seq = 0;
    std::string path;
    int fd = -1;
    /// The newest segment with any non-zero byte after its header: only here can a damaged
    /// record be a torn tail.
    bool newest = false;
    corrupt_policy policy = corrupt_policy::refuse;
};

struct scan_output {
    uint64_t used = segment_header_bytes; ///< where the scan stopped (the append point)
    bool has_records = false;
    bool failed = false; ///< policy refuse (or the visitor) stopped open()
};

// Decodes one segment held in memory, applying the torn-tail and corruption rules of
// store::open (see journal_store.hpp), and hands its valid records to the visitor in place.
class segment_scanner {
public:
    segment_scanner(const scan_input& in,
                    std::string_view data,
                    open_result& res,
                    const record_visitor& visit,
                    std::vector<record_ref>& batch)
        : in_(in),
          data_(data),
          res_(res),
          visit_(visit),
          batch_(batch) {}

    scan_output run() {
        scan_output out;
        uint64_t off = segment_header_bytes;
        batch_.clear();
        while (off < data_.size()) {
            record_view rec;
            size_t used = 0;
            auto st = decode(data_.data() + off, data_.size() - off, rec, used);
            if (st == decode_status::ok) {
                batch_.push_back({rec, in_.seq, off});
                off += used;
                out.has_records = true;
                continue;
            }
            auto next = after_damage(off, st, out);
            if (!next) {
                break;
            }
            off = *next;
        }
        out.used = std::min<uint64_t>(off, data_.size());
        // Whatever decoded goes to the visitor, also when the policy stopped the scan: records
        // before a refused one were read in journal order like any other.
        if (!batch_.empty() && !visit_(batch_)) {
            res_.stopped = true;
            out.failed = true;
        }
        batch_.clear();
        return out;
    }

private:
    // Handles what is at `off` when it is not a valid record; returns where to go on, or
    // nothing to stop scanning this segment.
    std::optional<uint64_t> after_damage(uint64_t off, decode_status st, scan_output& out) {
        uint64_t nz = first_nonzero(off);
        if (nz == data_.size()) {
            return std::nullopt; // Only zeros left: the unwritten end of the segment.
        }
        // Capture the reason before find_ok() runs decode again.
        std::string reason = describe(off, st, nz);
        uint64_t from = st == decode_status::end ? std::max(off + 1, nz < 3 ? 0 : nz - 3) : off + 1;
        auto next_ok = find_ok(from);
        if (!next_ok && in_.newest) {
            // A write that never completed: nothing was confirmed from here on.
            cut(off);
            return std::nullopt;
        }
        if (!report(off, reason)) {
            out.failed = true;
            return std::nullopt;
        }
        return next_ok;
    }

    std::string describe(uint64_t off, decode_status st, uint64_t nz) const {
        uint64_t left = data_.size() - off;
        if (st == decode_status::end) {
            // A zero length with data after it may hide records; it is never a clean end.
            return "a zero length is followed by non-zero bytes at offset " + std::to_string(nz);
        }
        if (st == decode_status::corrupt) {
            return std::string(last_corrupt_reason());
        }
        if (left < 4) {
            return "truncated: only " + std::to_string(left) + " bytes remain in the segment";
        }
        return "truncated: length " + std::to_string(get_le(data_.data() + off, 4)) + " but only "
               + std::to_string(left) + " bytes remain in the segment";
    }

    uint64_t first_nonzero(uint64_t from) const {
        auto it = std::find_if(data_.begin() + static_cast<std::ptrdiff_t>(from), data_.end(),
                               [](char c) { return c != 0; });
        return static_cast<uint64_t>(it - data_.begin());
    }

    // The first offset at or after `from` where a valid record decodes. Cheap byte by byte:
    // nearly every offset fails the length, type or reserved-byte check before the CRC.
    std::optional<uint64_t> find_ok(uint64_t from) const {
        record_view rec;
        size_t used = 0;
        for (uint64_t p = from; p < data_.size(); ++p) {
            if (decode(data_.data() + p, data_.size() - p, rec, used) == decode_status::ok) {
                return p;
            }
        }
        return std::nullopt;
    }

    // Zeroes the torn tail so a later append can never run into its leftovers.
    void cut(uint64_t off) {
        auto last = std::find_if(data_.rbegin(), data_.rend(), [](char c) { return c != 0; });
        auto end = static_cast<uint64_t>(data_.rend() - last);
        zero_fill(in_.fd, off, end, in_.path);
        datasync(in_.fd, in_.path);
        res_.torn_tail = true;
        res_.torn_file = in_.path;
        res_.torn_offset = off;
    }

    // Records a corruption; false when the policy says open() must stop.
    bool report(uint64_t off, const std::string& reason) {
        res_.corrupt.push_back({in_.path, off, reason});
        if (in_.policy == corrupt_policy::refuse) {
            res_.error = "journal record at " + in_.path + " offset " + std::to_string(off)
                         + " is corrupt: " + reason;
            return false;
        }
        return true;
    }

    const scan_input& in_;
    std::string_view data_;
    open_result& res_;
    const record_visitor& visit_;
    std::vector<record_ref>& batch_;
};

} // namespace

io_error::io_error(int err, std::string op, std::string path)
    : std::system_error(err, std::generic_category(), "journal: " + op + " " + path),
      op_(std::move(op)),
      path_(std::move(path)) {}

std::string errno_name(int err) {
    for (const auto& e : injectable_errnos) {
        if (e.value == err) {
            return e.name;
        }
    }
    if (const char* n = ::strerrorname_np(err)) {
        return n;
    }
    return std::to_string(err);
}

std::optional<injected_fault> parse_fault(const std::string& spec, std::string& error) {
    error = std::string(fault_env) + "='" + spec
            + "' is not write:N:ERRNO or sync:N:ERRNO (N >= 1, ERRNO one of EIO, ENOSPC, "
              "EDQUOT, EROFS, EFBIG, ENODEV)";
    auto first = spec.find(':');
    auto second = first == std::string::npos ? first : spec.find(':', first + 1);
    if (second == std::string::npos) {
        return std::nullopt;
    }
    injected_fault f;
    auto what = spec.substr(0, first);
    if (what == "write") {
        f.what = injected_fault::target::write;
    } else if (what == "sync") {
        f.what = injected_fault::target::sync;
    } else {
        return std::nullopt;
    }
    auto n = spec.substr(first + 1, second - first - 1);
    if (n.empty() || n.size() > 18
        || !std::all_of(n.begin(), n.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return std::nullopt;
    }
    f.nth = std::strtoull(n.c_str(), nullptr, 10);
    auto name = spec.substr(second + 1);
    for (const auto& e : injectable_errnos) {
        if (name == e.name) {
            f.err = e.value;
        }
    }
    if (f.nth == 0 || f.err == 0) {
        return std::nullopt;
    }
    error.clear();
    return f;
}

struct store::impl {
    /// One segment file.
    struct segment {
        int fd = -1; ///< opened lazily; closed for segments older than the current one
        uint64_t size = 0;
        uint64_t used = segment_header_bytes; ///< end of the last record
        bool has_records = false;
    };

    store_config cfg;
    std::string dir;
    std::map<uint64_t, segment> segs;
    uint64_t current = 0;
    uint64_t next_seq = 1;
    std::vector<uint64_t> unsynced; ///< segments written since the last sync
    bool opened = false;
    /// The fault the test seam injects (read once by open()); none in normal operation.
    std::optional<injected_fault> fault;
    /// Writes and syncs since open(), counted only while a fault is armed.
    uint64_t writes_done = 0;
    uint64_t syncs_done = 0;
    /// open() reads one segment at a time through a read-only mapping of it: the records are
    /// checked and decoded straight from the page cache, never copied whole (a pread into a
    /// buffer cost a tenth of recovery in copying alone). Null when nothing is mapped.
    char* mapped = nullptr;
    uint64_t mapped_size = 0;
    /// Where a segment is read to when the file system cannot map it.
    std::unique_ptr<char[]> fallback;
    /// The segment mapped, if any (the newest is read once to find it, then scanned).
    std::optional<uint64_t> mapped_seq;
    /// The valid records of the segment being scanned, handed to the visitor.
    std::vector<record_ref> batch;

    /// Counts one write or sync; true when the armed fault is for this one.
    bool fault_fires(injected_fault::target what) {
        if (!fault) {
            return false;
        }
        auto n = what == injected_fault::target::write ? ++writes_done : ++syncs_done;
        return fault->what == what && fault->nth == n;
    }

    explicit impl(store_config c);
    ~impl() { reset(); }

    void reset();
    void release_read_buffer();
    std::string name_of(uint64_t seq) const;
    std::optional<uint64_t> seq_of(const std::string& name) const;
    std::string path_of(uint64_t seq) const;
    int fd_of(uint64_t seq);
    std::string_view load(uint64_t seq, open_result& res);
    std::vector<uint64_t> list_segments();
    bool check_headers(const std::vector<uint64_t>& seqs, open_result& res);
    std::optional<uint64_t> newest_with_content(const std::vector<uint64_t>& seqs,
                                                open_result& res);
    bool scan(const std::vector<uint64_t>& seqs,
              corrupt_policy policy,
              const record_visitor& visit,
              open_result& res);
    void create_segment(uint64_t seq);
    void ensure_ready();
    void advance();
    void grow(uint64_t seq, uint64_t size);
    void mark_unsynced(uint64_t seq);
};

store::impl::impl(store_config c) : cfg(std::move(c)) {
    if (cfg.directory.empty()) {
        throw std::invalid_argument("journal: the directory is empty");
    }
    if (cfg.file_size < segment_header_bytes + record_header_bytes) {
        throw std::invalid_argument("journal: file_size " + std::to_string(cfg.file_size)
                                    + " cannot hold a segment header and a record");
    }
    dir = fs::absolute(cfg.directory).lexically_normal().string();
    while (dir.size() > 1 && dir.back() == '/') {
        dir.pop_back();
    }
}

void store::impl::reset() {
    for (auto& [seq, s] : segs) {
        close_fd(s.fd);
    }
    segs.clear();
    unsynced.clear();
    current = 0;
    next_seq = 1;
    opened = false;
    release_read_buffer();
}

void store::impl::release_read_buffer() {
    if (mapped != nullptr && !fallback) {
        ::munmap(mapped, mapped_size);
    }
    fallback.reset();
    mapped = nullptr;
    mapped_size = 0;
    mapped_seq.reset();
    batch = {};
}

std::string store::impl::name_of(uint64_t seq) const {
    char digits[32];
    std::snprintf(digits, sizeof digits, "%010llu", static_cast<unsigned long long>(seq));
    return cfg.prefix + "-" + digits + "." + cfg.extension;
}

// The sequence number of a segment file name; only names name_of() would produce match.
std::optional<uint64_t> store::impl::seq_of(const std::string& name) const {
    auto head = cfg.prefix + "-";
    auto tail = "." + cfg.extension;
    if (name.size() < head.size() + 10 + tail.size() || name.compare(0, head.size(), head) != 0
        || name.compare(name.size() - tail.size(), tail.size(), tail) != 0) {
        return std::nullopt;
    }
    auto digits = name.substr(head.size(), name.size() - head.size() - tail.size());
    if (digits.size() > 20 || !std::all_of(digits.begin(), digits.end(), [](char c) {
            return c >= '0' && c <= '9';
        })) {
        return std::nullopt;
    }
    uint64_t seq = std::strtoull(digits.c_str(), nullptr, 10);
    if (name_of(seq) != name) {
        return std::nullopt;
    }
    return seq;
}

std::string store::impl::path_of(uint64_t seq) const {
    return dir == "/" ? dir + name_of(seq) : dir + "/" + name_of(seq);
}

int store::impl::fd_of(uint64_t seq) {
    auto& s = segs.at(seq);
    if (s.fd < 0) {
        s.fd = open_fd(path_of(seq), O_RDWR);
    }
    return s.fd;
}

// Maps a whole segment read-only and returns a view of it, valid until the next load().
// MAP_POPULATE maps every page in one go (the kernel reads ahead on a cold cache) instead of a
// fault per page. A segment is never shortened while a node has it open (appends only grow the
// current one), so the mapping cannot lose pages under the scan.
std::string_view store::impl::load(uint64_t seq, open_result& res) {
    auto& s = segs.at(seq);
    if (mapped_seq != seq) {
        release_read_buffer();
        if (s.size == 0) {
            return {};
        }
        auto start = std::chrono::steady_clock::now();
        void* p = ::mmap(nullptr, s.size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd_of(seq), 0);
        if (p != MAP_FAILED) {
            ::madvise(p, s.size, MADV_SEQUENTIAL);
            mapped = static_cast<char*>(p);
        } else {
            // A file system that cannot map files: one large read instead.
            fallback.reset(new char[s.size]);
            pread_all(fd_of(seq), fallback.get(), s.size, 0, path_of(seq));
            mapped = fallback.get();
        }
        mapped_size = s.size;
        mapped_seq = seq;
        res.read_seconds +=
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        res.bytes_read += s.size;
    }
    return {mapped, s.size};
}

// Segment sequence numbers in the directory, oldest first; removes segments whose creation a
// crash interrupted (they never held a record).
std::vector<uint64_t> store::impl::list_segments() {
    std::vector<uint64_t> seqs;
    bool removed = false;
    for (const auto& entry : fs::directory_iterator(dir)) {
        auto name = entry.path().filename().string();
        if (name.size() > temp_suffix.size()
            && name.compare(name.size() - temp_suffix.size(), temp_suffix.size(), temp_suffix) == 0
            && seq_of(name.substr(0, name.size() - temp_suffix.size()))) {
            if (::unlink(entry.path().c_str()) != 0) {
                throw_os("unlink", entry.path().string());
            }
            removed = true;
        } else if (auto seq = seq_of(name)) {
            seqs.push_back(*seq);
        }
    }
    if (removed) {
        fsync_directory(dir);
    }
    std::sort(seqs.begin(), seqs.end());
    return seqs;
}

bool store::impl::check_headers(const std::vector<uint64_t>& seqs, open_result& res) {
    for (auto seq : seqs) {
        auto path = path_of(seq);
        auto& s = segs[seq];
        s.size = file_size_of(fd_of(seq), path);
        char head[segment_header_bytes] = {};
        pread_all(s.fd, head, std::min(s.size, segment_header_bytes), 0, path);
        if (auto problem = header_problem(head, s.size, seq); !problem.empty()) {
            res.error = "journal segment " + path + " has a bad header: " + problem;
            return false;
        }
        close_fd(s.fd);
        next_seq = std::max(next_seq, seq + 1);
    }
    return true;
}

// Reads segments from the newest back until one has a non-zero byte after its header.
std::optional<uint64_t> store::impl::newest_with_content(const std::vector<uint64_t>& seqs,
                                                         open_result& res) {
    for (auto it = seqs.rbegin(); it != seqs.rend(); ++it) {
        auto data = load(*it, res);
        if (std::any_of(data.begin() + segment_header_bytes, data.end(),
                        [](char c) { return c != 0; })) {
            return *it;
        }
    }
    return std::nullopt;
}

// Scans the segments up to the newest with content; false when policy refuse stopped it.
bool store::impl::scan(const std::vector<uint64_t>& seqs,
                       corrupt_policy policy,
                       const record_visitor& visit,
                       open_result& res) {
    auto newest = newest_with_content(seqs, res);
    if (!newest) {
        // No segment holds anything: appends go to the oldest.
        current = seqs.empty() ? 0 : seqs.front();
        return true;
    }
    for (size_t i = 0; i < seqs.size() && seqs[i] <= *newest; ++i) {
        auto seq = seqs[i];
        scan_input in{seq, path_of(seq), fd_of(seq), seq == *newest, policy};
        auto data = load(seq, res);
        if (i + 1 < seqs.size() && seqs[i + 1] <= *newest) {
            // The disk reads the next segment while this one is replayed: on a cold page
            // cache that hides most of the reading (docs/journal.md, "Recovery phases").
            ::posix_fadvise(fd_of(seqs[i + 1]), 0, 0, POSIX_FADV_WILLNEED);
        }
        auto out = segment_scanner(in, data, res, visit, batch).run();
        auto& s = segs.at(seq);
        s.used = out.used;
        s.has_records = out.has_records;
        if (out.failed) {
            return false;
        }
        if (seq != *newest) {
            close_fd(s.fd);
        }
    }
    current = *newest;
    return true;
}

void store::impl::create_segment(uint64_t seq) {
    auto path = path_of(seq);
    auto temp = path + std::string(temp_suffix);
    int fd = open_fd(temp, O_RDWR | O_CREAT | O_TRUNC);
    try {
        auto header = segment_header(seq);
        pwrite_all(fd, header.data(), header.size(), 0, temp);
        zero_fill(fd, segment_header_bytes, cfg.file_size, temp);
        datasync(fd, temp);
        if (::rename(temp.c_str(), path.c_str()) != 0) {
            throw_os("rename to " + path, temp);
        }
    } catch (...) {
        ::close(fd);
        ::unlink(temp.c_str());
        throw;
    }
    segs[seq] = segment{fd, cfg.file_size, segment_header_bytes, false};
    next_seq = std::max(next_seq, seq + 1);
    // The segment is durable from here on, so sync() never has to sync the directory.
    fsync_directory(dir);
}

// Keeps min_files - 1 unused segments created beyond the current one.
void store::impl::ensure_ready() {
    uint64_t want = cfg.min_files > 1 ? cfg.min_files - 1 : 0;
    auto ready = static_cast<uint64_t>(std::distance(segs.upper_bound(current), segs.end()));
    for (; ready < want; ++ready) {
        create_segment(next_seq);
    }
}

// Moves appends to the next segment, creating it if none is ready.
void store::impl::advance() {
    // Sync the segment being left before anything goes to the next one: a crash can then
    // only tear the newest segment, which is where open() looks for a torn tail. This costs
    // one fdatasync per filled segment.
    if (std::find(unsynced.begin(), unsynced.end(), current) != unsynced.end()) {
        datasync(fd_of(current), path_of(current));
        unsynced.erase(std::remove(unsynced.begin(), unsynced.end(), current), unsynced.end());
    }
    if (segs.upper_bound(current) == segs.end()) {
        create_segment(next_seq);
    }
    close_fd(segs.at(current).fd);
    current = segs.upper_bound(current)->first;
    ensure_ready();
}

// Extends a segment (ftruncate: the new part reads as zeros).
void store::impl::grow(uint64_t seq, uint64_t size) {
    auto path = path_of(seq);
    if (::ftruncate(fd_of(seq), static_cast<off_t>(size)) != 0) {
        throw_os("ftruncate", path);
    }
    segs.at(seq).size = size;
}

void store::impl::mark_unsynced(uint64_t seq) {
    if (std::find(unsynced.begin(), unsynced.end(), seq) == unsynced.end()) {
        unsynced.push_back(seq);
    }
}

store::store(store_config cfg) : impl_(new impl(std::move(cfg))) {}

store::~store() {
    delete impl_;
}

open_result store::open(corrupt_policy policy) {
    std::vector<located_record> records;
    auto res = open(policy, [&records](const std::vector<record_ref>& batch) {
        for (const auto& r : batch) {
            records.push_back({to_record(r.rec), r.file_seq, r.offset});
        }
        return true;
    });
    res.records = std::move(records);
    return res;
}

open_result store::open(corrupt_policy policy, const record_visitor& visit) {
    impl_->reset();
    open_result res;
    impl_->fault.reset();
    impl_->writes_done = 0;
    impl_->syncs_done = 0;
    if (const char* spec = std::getenv(fault_env); spec != nullptr && *spec != '\0') {
        std::string why;
        impl_->fault = parse_fault(spec, why);
        if (!impl_->fault) {
            res.error = why;
            return res;
        }
        res.fault = impl_->fault;
    }
    make_directories(impl_->dir);
    auto seqs = impl_->list_segments();
    for (auto seq : seqs) {
        res.files[seq] = impl_->path_of(seq);
    }
    bool ok = impl_->check_headers(seqs, res) && impl_->scan(seqs, policy, visit, res);
    // The buffer is a whole segment: give it back once the journal is read.
    impl_->release_read_buffer();
    if (!ok) {
        impl_->reset();
        return res;
    }
    if (impl_->segs.empty()) {
        impl_->create_segment(impl_->next_seq);
        impl_->current = impl_->segs.begin()->first;
    }
    impl_->ensure_ready();
    impl_->opened = true;
    return res;
}

store::placement store::append(std::string_view bytes) {
    if (!impl_->opened) {
        throw std::logic_error("journal: append before a successful open");
    }
    auto* s = &impl_->segs.at(impl_->current);
    if (s->used + bytes.size() > s->size) {
        if (s->used > segment_header_bytes) {
            impl_->advance();
            s = &impl_->segs.at(impl_->current);
        }
        if (s->used + bytes.size() > s->size) {
            // A batch larger than a segment: this segment is its own and grows to fit.
            impl_->grow(impl_->current, s->used + bytes.size());
        }
    }
    placement p{impl_->current, s->used};
    if (bytes.empty()) {
        return p;
    }
    if (impl_->fault_fires(injected_fault::target::write)) {
        errno = impl_->fault->err;
        throw_os("pwrite", impl_->path_of(impl_->current));
    }
    pwrite_all(impl_->fd_of(impl_->current), bytes.data(), bytes.size(), s->used,
               impl_->path_of(impl_->current));
    s->used += bytes.size();
    s->has_records = true;
    impl_->mark_unsynced(impl_->current);
    return p;
}

// After a throw the store must be reopened: a failed fdatasync may have dropped the dirty
// pages, so retrying it could report success for bytes that never reached the disk.
void store::sync() {
    for (auto seq : impl_->unsynced) {
        if (impl_->fault_fires(injected_fault::target::sync)) {
            errno = impl_->fault->err;
            throw_os("fdatasync", impl_->path_of(seq));
        }
        datasync(impl_->fd_of(seq), impl_->path_of(seq));
    }
    impl_->unsynced.clear();
}

void store::remove(uint64_t file_seq) {
    if (impl_->opened && file_seq == impl_->current) {
        throw std::invalid_argument("journal: cannot remove the current segment "
                                    + impl_->path_of(file_seq));
    }
    auto it = impl_->segs.find(file_seq);
    if (it == impl_->segs.end()) {
        throw std::invalid_argument("journal: no segment " + impl_->path_of(file_seq));
    }
    auto path = impl_->path_of(file_seq);
    close_fd(it->second.fd);
    impl_->segs.erase(it);
    auto& u = impl_->unsynced;
    u.erase(std::remove(u.begin(), u.end(), file_seq), u.end());
    if (::unlink(path.c_str()) != 0) {
        throw_os("unlink", path);
    }
    fsync_directory(impl_->dir);
}

bool store::read(uint64_t file_seq, uint64_t offset, record& out) {
    auto it = impl_->segs.find(file_seq);
    if (it == impl_->segs.end() || offset < segment_header_bytes
        || offset + record_header_bytes > it->second.size) {
        return false;
    }
    auto path = impl_->path_of(file_seq);
    int fd = impl_->fd_of(file_seq);
    std::string buf(record_header_bytes, '\0');
    pread_all(fd, buf.data(), buf.size(), offset, path);
    auto length = get_le(buf.data(), 4);
    if (length < record_header_bytes || length > record_max_bytes
        || offset + length > it->second.size) {
        return false;
    }
    buf.resize(length);
    pread_all(fd, buf.data() + record_header_bytes, length - record_header_bytes,
              offset + record_header_bytes, path);
    size_t consumed = 0;
    return decode(buf.data(), buf.size(), out, consumed) == decode_status::ok;
}

std::vector<uint64_t> store::segments() const {
    std::vector<uint64_t> out;
    for (const auto& [seq, s] : impl_->segs) {
        out.push_back(seq);
    }
    return out;
}

uint64_t store::current_segment() const {
    return impl_->current;
}

std::string store::path_of(uint64_t file_seq) const {
    return impl_->path_of(file_seq);
}

uint64_t store::bytes_used() const {
    uint64_t total = 0;
    for (const auto& [seq, s] : impl_->segs) {
        if (s.has_records) {
            total += s.used;
        }
    }
    return total;
}

uint64_t store::end_of(uint64_t file_seq) const {
    auto it = impl_->segs.find(file_seq);
    return it == impl_->segs.end() ? 0 : it->second.used;
}

std::string store::read_bytes(uint64_t file_seq, uint64_t offset, uint64_t max) {
    auto it = impl_->segs.find(file_seq);
    if (it == impl_->segs.end() || offset >= it->second.used) {
        return {};
    }
    std::string out(static_cast<size_t>(std::min(max, it->second.used - offset)), '\0');
    pread_all(impl_->fd_of(file_seq), out.data(), out.size(), offset, impl_->path_of(file_seq));
    return out;
}

void store::open_mirror() {
    impl_->reset();
    make_directories(impl_->dir);
    if (!impl_->list_segments().empty()) {
        throw std::invalid_argument("journal: a mirror needs an empty directory, " + impl_->dir
                                    + " holds segments");
    }
    impl_->opened = true;
}

void store::write_at(uint64_t file_seq, uint64_t offset, std::string_view bytes) {
    if (!impl_->opened) {
        throw std::logic_error("journal: write_at before open_mirror");
    }
    if (impl_->segs.count(file_seq) == 0) {
        impl_->create_segment(file_seq);
    }
    auto& s = impl_->segs.at(file_seq);
    if (offset + bytes.size() > s.size) {
        impl_->grow(file_seq, offset + bytes.size());
    }
    pwrite_all(impl_->fd_of(file_seq), bytes.data(), bytes.size(), offset,
               impl_->path_of(file_seq));
    s.used = std::max(s.used, offset + bytes.size());
    s.has_records = s.has_records || offset + bytes.size() > segment_header_bytes;
    if (file_seq > impl_->current) {
        // The live moved on: older segments only get removed now, so their files need no fd.
        for (auto& [seq, seg] : impl_->segs) {
            if (seq < file_seq) {
                if (seg.fd >= 0) {
                    // Its last bytes start for the disk now, as start_write_back() would.
                    ::sync_file_range(seg.fd, 0, 0, SYNC_FILE_RANGE_WRITE);
                }
                close_fd(seg.fd);
            }
        }
        impl_->current = file_seq;
    }
    impl_->mark_unsynced(file_seq);
}

void store::start_write_back() {
    for (auto seq : impl_->unsynced) {
        // Only the open segments: write_at() started the write-back of those it closed. A
        // hint to the kernel: an error here shows again in sync()'s fdatasync.
        if (auto it = impl_->segs.find(seq); it != impl_->segs.end() && it->second.fd >= 0) {
            ::sync_file_range(it->second.fd, 0, 0, SYNC_FILE_RANGE_WRITE);
        }
    }
}

} // namespace actormq::journal
