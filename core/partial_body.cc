#include "core/partial_body.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <algorithm>
#include <map>

#include "core/stream_file.h"

namespace fanout {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kRecordSuffix = ".meta";

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string BaseName(const std::string& path) { return path.substr(path.rfind('/') + 1); }

// Checks a record against its stream file, cutting the file to the
// recorded bytes. Empty if the pair may be kept; else why not.
std::string CheckPartial(const std::string& stream_path, const EntryMeta& meta) {
  if (meta.body_file != BaseName(stream_path)) return "its record names another file";
  if (!meta.head.content_length || meta.body_length == 0 ||
      meta.body_length >= *meta.head.content_length) {
    return "its record is not of a partly fetched body of known length";
  }
  struct stat st;
  if (::stat(stream_path.c_str(), &st) != 0) return "its body file is missing";
  if (static_cast<std::uint64_t>(st.st_size) < meta.body_length) {
    return "its body file holds " + std::to_string(st.st_size) + " bytes, fewer than the " +
           std::to_string(meta.body_length) + " its record promises";
  }
  // Bytes past the record were never made durable.
  if (static_cast<std::uint64_t>(st.st_size) > meta.body_length &&
      ::truncate(stream_path.c_str(), static_cast<off_t>(meta.body_length)) != 0) {
    return Status::FromErrno("cannot cut it to its recorded length", errno).message();
  }
  return "";
}

}  // namespace

std::string PartialRecordPath(const std::string& stream_path) {
  return stream_path + std::string(kRecordSuffix);
}

PartialRecord::PartialRecord(std::string stream_path, EntryMeta meta)
    : path_(PartialRecordPath(stream_path)), meta_(std::move(meta)) {
  meta_.body_file = BaseName(stream_path);
  meta_.body_length = 0;
}

PartialRecord::~PartialRecord() {
  if (written_ && !kept_) ::unlink(path_.c_str());
}

Status PartialRecord::Write(std::uint64_t durable) {
  EntryMeta next = meta_;
  next.body_length = durable;
  const Status st = WriteEntryMeta(path_, next);
  if (!st.ok()) return st;
  meta_.body_length = durable;
  written_ = true;
  return st;
}

PartialBody::PartialBody(std::string path, EntryMeta meta, int fd)
    : path_(std::move(path)), meta_(std::move(meta)), fd_(fd) {}

Status PartialBody::Open(const std::string& path, EntryMeta meta,
                         std::shared_ptr<PartialBody>* out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("open " + path, errno);
  out->reset(new PartialBody(path, std::move(meta), fd));
  return Status::Ok();
}

PartialBody::~PartialBody() {
  ::close(fd_);
  ::unlink(path_.c_str());
  ::unlink(PartialRecordPath(path_).c_str());
}

Status PartialBody::Read(std::uint64_t offset, char* buf, std::size_t n, std::size_t* got) const {
  for (;;) {
    const ssize_t r = ::pread(fd_, buf, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::FromErrno("read " + path_, errno);
    if (r == 0) return Status::IOError("read " + path_ + ": it ends before its recorded length");
    *got = static_cast<std::size_t>(r);
    return Status::Ok();
  }
}

PartialScan ScanPartials(const std::string& tmp_dir) {
  PartialScan scan;
  std::vector<std::string> streams;
  std::vector<std::string> records;
  std::error_code ec;
  for (fs::directory_iterator f(tmp_dir, ec), end; !ec && f != end; f.increment(ec)) {
    const std::string name = f->path().filename();
    const std::string path = f->path();
    if (StreamFile::IsStreamFileName(name)) {
      streams.push_back(path);
    } else if (EndsWith(name, kRecordSuffix) &&
               StreamFile::IsStreamFileName(name.substr(0, name.size() - kRecordSuffix.size()))) {
      records.push_back(path);
    } else if (EndsWith(name, ".meta.tmp") &&
               StreamFile::IsStreamFileName(name.substr(0, name.size() - 9))) {
      scan.doomed.push_back(path);  // a record's interrupted write
    } else {
      scan.warnings.push_back("leaving " + path + " alone: not a file fanoutd made");
    }
  }
  if (ec) {
    scan.status = Status::IOError("cannot read " + tmp_dir + ": " + ec.message());
    return scan;
  }
  std::map<std::string, std::shared_ptr<PartialBody>> by_key;
  for (const std::string& stream : streams) {
    const std::string record = PartialRecordPath(stream);
    EntryMeta meta;
    Status st = ReadEntryMeta(record, &meta, EntryMetaKind::kPartial);
    if (st.code() == Status::Code::kNotFound) {
      scan.doomed.push_back(stream);  // never checkpointed
      continue;
    }
    std::string why = st.ok() ? CheckPartial(stream, meta) : st.message();
    std::shared_ptr<PartialBody> body;
    if (why.empty() && !(st = PartialBody::Open(stream, meta, &body)).ok()) why = st.message();
    if (!why.empty()) {
      scan.warnings.push_back("discarding partial body " + stream +
                              (meta.key.empty() ? "" : " of " + meta.key) + ": " + why);
      scan.doomed.push_back(stream);
      scan.doomed.push_back(record);
      continue;
    }
    std::shared_ptr<PartialBody>& kept = by_key[meta.key];
    if (kept && kept->length() >= body->length()) continue;  // body's destructor deletes it
    kept = std::move(body);
  }
  for (const std::string& record : records) {
    const std::string stream = record.substr(0, record.size() - kRecordSuffix.size());
    if (std::find(streams.begin(), streams.end(), stream) == streams.end()) {
      scan.warnings.push_back("discarding partial body record " + record +
                              ": its body file is missing");
      scan.doomed.push_back(record);
    }
  }
  for (auto& [key, body] : by_key) scan.kept.push_back(std::move(body));
  return scan;
}

}  // namespace fanout
