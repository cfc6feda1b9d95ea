#ifndef TOKENCTL_CPROCESSSPAWN_H
#define TOKENCTL_CPROCESSSPAWN_H

#include <spawn.h>

/// pipe2(fds, O_CLOEXEC): both ends close-on-exec from the start (glibc declares pipe2 only under _GNU_SOURCE).
int tokenctl_pipe_cloexec(int fds[2]);

/// posix_spawn_file_actions_addclosefrom_np (glibc 2.34+): the child closes every descriptor from `from` up.
int tokenctl_spawn_close_from(posix_spawn_file_actions_t *actions, int from);

#endif
