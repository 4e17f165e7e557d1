#pragma once

/// Atomic file replacement: a file is written under a temporary name next to its destination and
/// renamed over it only once it is complete, so that a reader (or a crash, or a full disk) never
/// sees a truncated file: the destination holds either its previous content or the new one.

#include <functional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace quantsim {

/// Writes the content of one file into the stream it is given.
using StreamWriter = std::function<void(std::ostream&)>;

/// Replaces the file at `path` with what `write` writes, atomically.
///
/// `write` writes into a new temporary file in the same directory as `path` (a unique name
/// `.<file name>.<unique>.tmp`, created with the default permissions); the stream is flushed and
/// checked, the file is fsync'ed and closed, and only then renamed over `path` (POSIX rename is
/// atomic within a file system); the directory is fsync'ed too, so that the rename survives a
/// crash. Nothing else is created: the directory must exist.
///
/// When `write` throws, the exception propagates unchanged; when a write to the disk fails (a full
/// disk, a file size limit) or the file cannot be created, synced or renamed, c10::Error names
/// `path` and the system's reason. A failing disk write does not fail the stream `write` is
/// writing into: the rest is discarded and the error raised once `write` returns, so that a
/// writer which checks its stream (torch::save's, which would otherwise throw from a destructor
/// and end the process) runs to its end. In every failing case the temporary file is removed and
/// the previous file at `path`, if any, is left byte-identical.
///
///     quantsim::write_file_atomically("out/model.encodings",
///                                     [&](std::ostream& os) { os << encodings.dump(4); });
void write_file_atomically(const std::string& path, const StreamWriter& write);

/// Writes several files as write_file_atomically does, all-or-nothing as far as POSIX allows:
/// every file is first written completely under its temporary name, and the renames happen only
/// when all writes succeeded. A failing write therefore changes none of the destinations (a
/// failing rename, which needs an unusual file-system error, can leave the earlier files renamed).
///
///     quantsim::write_files_atomically(
///         {{"m.encodings", write_a}, {"m_torch.encodings", write_b}});
void write_files_atomically(const std::vector<std::pair<std::string, StreamWriter>>& files);

}  // namespace quantsim
