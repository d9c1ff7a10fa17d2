// SPDX-License-Identifier: Apache-2.0
#include "actors/storage/durable_file.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace actormq::storage {

std::string failure(const std::string& file, const char* op, int err) {
    return "file=" + file + " op=" + op + " errno=" + std::strerror(err);
}

bool write_all(int fd, const char* data, size_t size, uint64_t offset) {
    while (size > 0) {
        auto n = ::pwrite(fd, data, size, static_cast<off_t>(offset));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        data += n;
        size -= static_cast<size_t>(n);
        offset += static_cast<uint64_t>(n);
    }
    return true;
}

std::string sync_directory(const std::string& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return failure(dir, "open", errno);
    }
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    return rc == 0 ? std::string{} : failure(dir, "fsync", err);
}

std::string
replace_file(const std::string& dir, const std::string& path, const std::string& bytes) {
    auto tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return failure(tmp, "open", errno);
    }
    if (!write_all(fd, bytes.data(), bytes.size(), 0)) {
        int err = errno;
        ::close(fd);
        return failure(tmp, "pwrite", err);
    }
    if (::fdatasync(fd) != 0) {
        int err = errno;
        ::close(fd);
        return failure(tmp, "fdatasync", err);
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        return failure(path, "rename", errno);
    }
    return sync_directory(dir);
}

bool read_whole(const std::string& path, std::string& out) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        ::close(fd);
        return false;
    }
    out.resize(static_cast<size_t>(st.st_size));
    size_t done = 0;
    while (done < out.size()) {
        auto n = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(done));
        if (n <= 0) {
            if (n < 0 && errno == EINTR) {
                continue;
            }
            break;
        }
        done += static_cast<size_t>(n);
    }
    out.resize(done);
    ::close(fd);
    return true;
}

} // namespace actormq::storage
