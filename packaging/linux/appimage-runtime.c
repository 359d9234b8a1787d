/*
 * Minimal AppImage type-2 runtime, Likeness's own (Apache-2.0, as the
 * project): the official runtime and appimagetool are published only on
 * GitHub, which this project's build machines cannot reach.  Statically links
 * Debian's libsquashfuse(_ll) (BSD-2), libfuse3 (LGPL-2.1), libzstd (BSD) and
 * zlib; packaging/linux/make_appimage.sh builds it (the LGPL relinking offer:
 * this file and that script are the complete corresponding source).
 *
 * Layout: [this ELF][squashfs image].  The image starts where the ELF ends
 * (max of section-header-table end and end of the last section/segment).
 *
 * Behaviour
 *   --appimage-extract-and-run ARGS / env APPIMAGE_EXTRACT_AND_RUN=1
 *        extract into $TMPDIR/appimage_extracted_XXXXXX, run AppRun ARGS,
 *        remove the directory afterwards (unless NO_CLEANUP=1), exit with
 *        AppRun's status.
 *   --appimage-extract [DIR]   extract into ./squashfs-root (or DIR)
 *   --appimage-mount           mount, print mount point, wait for Ctrl-C
 *   --appimage-offset          print the payload offset
 *   --appimage-updateinformation, --appimage-signature, --appimage-version,
 *   --appimage-help
 *   (no option)  FUSE-mount the payload read-only via the linked libfuse3
 *        (root: mount(2) directly; others: needs setuid fusermount3), exec
 *        AppRun; when FUSE is unavailable, fall back to extract-and-run.
 * AppRun gets APPIMAGE, APPDIR, ARGV0, OWD in its environment.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <squashfuse/ll.h>
#include <fuse3/fuse_lowlevel.h>

#define RUNTIME_VERSION "likeness-runtime 1"

/* Sections defined by the AppImage type-2 spec; filled by tooling. */
__attribute__((section(".upd_info"), used)) char upd_info[1024] = {0};
__attribute__((section(".sha256_sig"), used)) char sha256_sig[1024] = {0};
__attribute__((section(".sig_key"), used, retain)) char sig_key[8192] = {0};

/* We build with zstd (and gzip) payloads only.  Stub the decompressors we do
 * not ship so that GPL liblzo2, liblz4 and liblzma are not linked in. */
int lzo1x_decompress_safe(const void *s, unsigned long sl, void *d,
                          unsigned long *dl, void *w) {
  (void)s; (void)sl; (void)d; (void)dl; (void)w; return -1;
}
int LZ4_decompress_safe(const char *s, char *d, int cs, int mo) {
  (void)s; (void)d; (void)cs; (void)mo; return -1;
}
int lzma_stream_buffer_decode(void *a, void *b, void *c, const unsigned char *in,
                              size_t *ip, size_t is, unsigned char *out,
                              size_t *op, size_t os) {
  (void)a; (void)b; (void)c; (void)in; (void)ip; (void)is; (void)out;
  (void)op; (void)os; return 11; /* LZMA_PROG_ERROR */
}

static char self_path[PATH_MAX];

static void die(const char *msg) {
  fprintf(stderr, "AppImage runtime: %s: %s\n", msg, strerror(errno));
  exit(127);
}

static off_t elf_size(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("open self");
  Elf64_Ehdr eh;
  if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh ||
      memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
      eh.e_ident[EI_CLASS] != ELFCLASS64) {
    fprintf(stderr, "AppImage runtime: %s is not an ELF64 file\n", path);
    exit(127);
  }
  off_t end = (off_t)eh.e_shoff + (off_t)eh.e_shentsize * eh.e_shnum;
  for (int i = 0; i < eh.e_shnum; i++) {
    Elf64_Shdr sh;
    if (pread(fd, &sh, sizeof sh, eh.e_shoff + (off_t)i * eh.e_shentsize) !=
        (ssize_t)sizeof sh) break;
    if (sh.sh_type != SHT_NOBITS && (off_t)(sh.sh_offset + sh.sh_size) > end)
      end = sh.sh_offset + sh.sh_size;
  }
  for (int i = 0; i < eh.e_phnum; i++) {
    Elf64_Phdr ph;
    if (pread(fd, &ph, sizeof ph, eh.e_phoff + (off_t)i * eh.e_phentsize) !=
        (ssize_t)sizeof ph) break;
    if ((off_t)(ph.p_offset + ph.p_filesz) > end) end = ph.p_offset + ph.p_filesz;
  }
  close(fd);
  return end;
}

/* ---------- extraction ---------- */

static int write_file(sqfs *fs, sqfs_inode *ino, const char *dst, mode_t mode) {
  int fd = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode & 07777);
  if (fd < 0) return -1;
  static char buf[1 << 17];
  sqfs_off_t pos = 0, total = (sqfs_off_t)ino->xtra.reg.file_size;
  while (pos < total) {
    sqfs_off_t n = total - pos > (sqfs_off_t)sizeof buf ? (sqfs_off_t)sizeof buf
                                                         : total - pos;
    if (sqfs_read_range(fs, ino, pos, &n, buf) != SQFS_OK || n <= 0) {
      close(fd); errno = EIO; return -1;
    }
    for (sqfs_off_t w = 0; w < n;) {
      ssize_t r = write(fd, buf + w, n - w);
      if (r < 0) { close(fd); return -1; }
      w += r;
    }
    pos += n;
  }
  fchmod(fd, mode & 07777);
  return close(fd);
}

static int extract(const char *image, off_t offset, const char *dest) {
  sqfs fs;
  int fd = open(image, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("open image");
  if (sqfs_init(&fs, fd, offset) != SQFS_OK) {
    fprintf(stderr, "AppImage runtime: no squashfs payload at offset %lld "
            "(unsupported compression?)\n", (long long)offset);
    return -1;
  }
  if (mkdir(dest, 0755) != 0 && errno != EEXIST) die("mkdir dest");
  sqfs_traverse trv;
  if (sqfs_traverse_open(&trv, &fs, sqfs_inode_root(&fs)) != SQFS_OK) return -1;
  sqfs_err err = SQFS_OK;
  char path[PATH_MAX];
  int rc = 0;
  while (sqfs_traverse_next(&trv, &err)) {
    if (trv.dir_end) continue;
    sqfs_inode ino;
    if (sqfs_inode_get(&fs, &ino, trv.entry.inode) != SQFS_OK) { rc = -1; break; }
    if (snprintf(path, sizeof path, "%s/%s", dest, trv.path) >= (int)sizeof path) {
      rc = -1; break;
    }
    mode_t mode = ino.base.mode;
    switch (ino.base.inode_type) {
    case SQUASHFS_DIR_TYPE: case SQUASHFS_LDIR_TYPE:
      if (mkdir(path, (mode & 07777) | S_IRWXU) != 0 && errno != EEXIST) rc = -1;
      break;
    case SQUASHFS_REG_TYPE: case SQUASHFS_LREG_TYPE:
      if (write_file(&fs, &ino, path, mode) != 0) rc = -1;
      break;
    case SQUASHFS_SYMLINK_TYPE: case SQUASHFS_LSYMLINK_TYPE: {
      char target[PATH_MAX];
      size_t sz = sizeof target;
      if (sqfs_readlink(&fs, &ino, target, &sz) != SQFS_OK) { rc = -1; break; }
      unlink(path);
      if (symlink(target, path) != 0) rc = -1;
      break;
    }
    default: /* devices, fifos, sockets: not meaningful in an AppDir */
      break;
    }
    if (rc) { fprintf(stderr, "AppImage runtime: extracting %s: %s\n", path,
                      strerror(errno)); break; }
  }
  if (err != SQFS_OK) rc = -1;
  sqfs_traverse_close(&trv);
  sqfs_destroy(&fs);
  close(fd);
  return rc;
}

static int rm_cb(const char *p, const struct stat *s, int t, struct FTW *f) {
  (void)s; (void)t; (void)f; return remove(p);
}

/* ---------- running AppRun ---------- */

static void set_env(const char *appdir, const char *argv0) {
  char owd[PATH_MAX];
  setenv("APPIMAGE", self_path, 1);
  setenv("APPDIR", appdir, 1);
  setenv("ARGV0", argv0, 1);
  if (getcwd(owd, sizeof owd)) setenv("OWD", owd, 1);
  unsetenv("APPIMAGE_EXTRACT_AND_RUN"); /* don't leak into child AppImages */
}

static char **apprun_argv(const char *apprun, int argc, char **argv) {
  char **a = calloc(argc + 1, sizeof *a);
  int j = 0;
  a[j++] = (char *)apprun;
  for (int i = 1; i < argc; i++)
    if (strncmp(argv[i], "--appimage-", 11) != 0) a[j++] = argv[i];
  a[j] = NULL;
  return a;
}

static pid_t child_pid;
static void forward_sig(int s) { if (child_pid > 0) kill(child_pid, s); }

static const char *tmpdir(void) {
  const char *t = getenv("TMPDIR");
  return t && *t ? t : "/tmp";
}

static int extract_and_run(off_t offset, int argc, char **argv) {
  char dir[PATH_MAX], apprun[PATH_MAX];
  snprintf(dir, sizeof dir, "%s/appimage_extracted_XXXXXX", tmpdir());
  if (!mkdtemp(dir)) die("mkdtemp");
  if (extract(self_path, offset, dir) != 0) {
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return 127;
  }
  if (snprintf(apprun, sizeof apprun, "%s/AppRun", dir) >= (int)sizeof apprun) return 127;
  set_env(dir, argv[0]);
  char **a = apprun_argv(apprun, argc, argv);
  child_pid = fork();
  if (child_pid < 0) die("fork");
  if (child_pid == 0) { execv(apprun, a); die("exec AppRun"); }
  signal(SIGINT, forward_sig); signal(SIGTERM, forward_sig);
  signal(SIGHUP, forward_sig); signal(SIGQUIT, forward_sig);
  int st = 0;
  while (waitpid(child_pid, &st, 0) < 0 && errno == EINTR) {}
  const char *nc = getenv("NO_CLEANUP");
  if (!(nc && *nc && strcmp(nc, "0") != 0))
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  return 128 + WTERMSIG(st);
}

/* ---------- FUSE ---------- */

static int have_fusermount(void) {
  if (geteuid() == 0) return access("/dev/fuse", R_OK | W_OK) == 0;
  /* non-root: libfuse runs the setuid helper fusermount3 */
  if (access("/usr/bin/fusermount3", X_OK) == 0) return 1;
  const char *p = getenv("PATH");
  if (!p) return 0;
  char *dup = strdup(p), *save = NULL, buf[PATH_MAX];
  int ok = 0;
  for (char *d = strtok_r(dup, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
    snprintf(buf, sizeof buf, "%s/fusermount3", d);
    if (access(buf, X_OK) == 0) { ok = 1; break; }
  }
  free(dup);
  return ok;
}

/* Fork a FUSE server child.  Returns 0 with `mnt` mounted, -1 otherwise.
 * The child serves until its parent process (which execs AppRun, or waits
 * in --appimage-mount) exits: PR_SET_PDEATHSIG -> SIGTERM -> unmount. */
static int fuse_mount_child(off_t offset, char *mnt, size_t mntsz) {
  if (!have_fusermount()) return -1;
  const char *base = strrchr(self_path, '/');
  base = base ? base + 1 : self_path;
  snprintf(mnt, mntsz, "%s/.mount_%.8sXXXXXX", tmpdir(), base);
  if (!mkdtemp(mnt)) return -1;
  int pfd[2];
  if (pipe2(pfd, O_CLOEXEC) != 0) return -1;
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    close(pfd[0]);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(0);
    sqfs_ll *ll = sqfs_ll_open(self_path, offset);
    if (!ll) _exit(1);
    struct fuse_lowlevel_ops ops;
    memset(&ops, 0, sizeof ops);
    ops.getattr = sqfs_ll_op_getattr;   ops.opendir = sqfs_ll_op_opendir;
    ops.releasedir = sqfs_ll_op_releasedir; ops.readdir = sqfs_ll_op_readdir;
    ops.lookup = sqfs_ll_op_lookup;     ops.open = sqfs_ll_op_open;
    ops.create = sqfs_ll_op_create;     ops.release = sqfs_ll_op_release;
    ops.read = sqfs_ll_op_read;         ops.readlink = sqfs_ll_op_readlink;
    ops.listxattr = sqfs_ll_op_listxattr; ops.getxattr = sqfs_ll_op_getxattr;
    ops.forget = sqfs_ll_op_forget;     ops.statfs = stfs_ll_op_statfs;
    char fsname[PATH_MAX + 16];
    snprintf(fsname, sizeof fsname, "ro,nodev,fsname=%s", self_path);
    char *fargv[] = {"appimage", "-o", fsname, NULL};
    struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
    sqfs_ll_chan ch;
    if (sqfs_ll_mount(&ch, mnt, &args, &ops, sizeof ops, ll) != SQFS_OK) _exit(1);
    if (write(pfd[1], "M", 1) != 1) _exit(1);
    close(pfd[1]);
    if (chdir("/") != 0) {}
    fuse_set_signal_handlers(ch.session);
    fuse_session_loop(ch.session);
    fuse_remove_signal_handlers(ch.session);
    sqfs_ll_unmount(&ch, mnt);
    rmdir(mnt);
    _exit(0);
  }
  close(pfd[1]);
  char c = 0;
  ssize_t r;
  while ((r = read(pfd[0], &c, 1)) < 0 && errno == EINTR) {}
  close(pfd[0]);
  if (r == 1 && c == 'M') return 0;
  waitpid(pid, NULL, 0);
  rmdir(mnt);
  return -1;
}

int main(int argc, char **argv) {
  ssize_t n = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
  if (n < 0) die("readlink /proc/self/exe");
  self_path[n] = 0;
  off_t offset = elf_size(self_path);
  const char *opt = argc > 1 ? argv[1] : "";

  if (!strcmp(opt, "--appimage-offset")) { printf("%lld\n", (long long)offset); return 0; }
  if (!strcmp(opt, "--appimage-version")) { puts(RUNTIME_VERSION); return 0; }
  if (!strcmp(opt, "--appimage-updateinformation")) {
    printf("%.*s\n", (int)sizeof upd_info, upd_info); return 0; }
  if (!strcmp(opt, "--appimage-signature")) {
    printf("%.*s\n", (int)sizeof sha256_sig, sha256_sig); return 0; }
  if (!strcmp(opt, "--appimage-help")) {
    puts("AppImage options:\n"
         "  --appimage-extract [DIR]    extract payload to DIR (./squashfs-root)\n"
         "  --appimage-extract-and-run  extract to a temp dir, run, clean up\n"
         "  --appimage-mount            mount payload, print mount point\n"
         "  --appimage-offset           print payload offset\n"
         "  --appimage-updateinformation, --appimage-signature,\n"
         "  --appimage-version, --appimage-help\n"
         "Env: APPIMAGE_EXTRACT_AND_RUN=1, NO_CLEANUP=1, TMPDIR");
    return 0;
  }
  if (!strcmp(opt, "--appimage-extract")) {
    const char *d = argc > 2 ? argv[2] : "squashfs-root";
    int rc = extract(self_path, offset, d);
    if (rc == 0) printf("%s\n", d);
    return rc ? 1 : 0;
  }
  const char *ear = getenv("APPIMAGE_EXTRACT_AND_RUN");
  if (!strcmp(opt, "--appimage-extract-and-run") || (ear && !strcmp(ear, "1")))
    return extract_and_run(offset, argc, argv);
  if (!strncmp(opt, "--appimage-", 11) && strcmp(opt, "--appimage-mount")) {
    fprintf(stderr, "AppImage runtime: unknown option %s\n", opt); return 1; }

  char mnt[PATH_MAX];
  if (fuse_mount_child(offset, mnt, sizeof mnt) != 0) {
    fprintf(stderr, "AppImage runtime: FUSE mount unavailable, "
            "falling back to --appimage-extract-and-run\n");
    return extract_and_run(offset, argc, argv);
  }
  if (!strcmp(opt, "--appimage-mount")) {
    printf("%s\n", mnt); fflush(stdout);
    pause(); /* Ctrl-C: the FUSE child gets SIGTERM via PDEATHSIG */
    return 0;
  }
  char apprun[PATH_MAX];
  if (snprintf(apprun, sizeof apprun, "%s/AppRun", mnt) >= (int)sizeof apprun) return 127;
  set_env(mnt, argv[0]);
  execv(apprun, apprun_argv(apprun, argc, argv));
  die("exec AppRun");
}
