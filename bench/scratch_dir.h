// A new, empty directory for a benchmark's files.
#ifndef MANDATE_BENCH_SCRATCH_DIR_H_
#define MANDATE_BENCH_SCRATCH_DIR_H_

#include <stdlib.h>

#include <cstdio>
#include <string>
#include <string_view>

// Makes /tmp/<prefix>-<unique suffix> (mkdtemp) and returns its path; exits when it cannot.
inline std::string ScratchDir(std::string_view prefix) {
  std::string path = "/tmp/";
  path.append(prefix);
  path.append("-XXXXXX");  // the six characters mkdtemp replaces with the unique suffix
  if (mkdtemp(path.data()) == nullptr) {
    std::perror("mkdtemp");
    std::exit(1);
  }
  return path;
}

#endif  // MANDATE_BENCH_SCRATCH_DIR_H_
