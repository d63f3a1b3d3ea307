/*
 * xcontainers._sys: the system calls the Python standard library lacks.
 *
 * Error convention: every wrapper returns the kernel's result on success and
 * raises OSError(errno, strerror[, path]) when the call returns -1.  Nothing
 * here keeps state; policy lives in xcontainers.kernel.
 */
#define _GNU_SOURCE
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <net/if.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static PyObject *raise_errno(const char *path)
{
    if (path != NULL)
        return PyErr_SetFromErrnoWithFilename(PyExc_OSError, path);
    return PyErr_SetFromErrno(PyExc_OSError);
}

/* mount(source, target, fstype, flags, data) */
static PyObject *sys_mount(PyObject *self, PyObject *args)
{
    const char *source, *target, *fstype, *data;
    unsigned long flags;
    (void)self;
    if (!PyArg_ParseTuple(args, "zszkz", &source, &target, &fstype, &flags, &data))
        return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = mount(source, target, fstype, flags, data);
    Py_END_ALLOW_THREADS
    if (rc < 0)
        return raise_errno(target);
    Py_RETURN_NONE;
}

/* umount2(target, flags) */
static PyObject *sys_umount2(PyObject *self, PyObject *args)
{
    const char *target;
    int flags;
    (void)self;
    if (!PyArg_ParseTuple(args, "si", &target, &flags))
        return NULL;
    if (umount2(target, flags) < 0)
        return raise_errno(target);
    Py_RETURN_NONE;
}

/* pivot_root(new_root, put_old) */
static PyObject *sys_pivot_root(PyObject *self, PyObject *args)
{
    const char *new_root, *put_old;
    (void)self;
    if (!PyArg_ParseTuple(args, "ss", &new_root, &put_old))
        return NULL;
    if (syscall(SYS_pivot_root, new_root, put_old) < 0)
        return raise_errno(new_root);
    Py_RETURN_NONE;
}

/* open_tree(path, flags) -> fd: with OPEN_TREE_CLONE, an O_PATH fd on a new
 * detached bind mount of *path* (no namespace holds it; it lives as long as
 * an fd on it). */
static PyObject *sys_open_tree(PyObject *self, PyObject *args)
{
    const char *path;
    unsigned int flags;
    (void)self;
    if (!PyArg_ParseTuple(args, "sI", &path, &flags))
        return NULL;
    long fd = syscall(428 /* SYS_open_tree */, AT_FDCWD, path, flags);
    if (fd < 0)
        return raise_errno(path);
    return PyLong_FromLong(fd);
}

/* mount_setattr(fd, attr_set, attr_clr): the attributes of the mount *fd*
 * (an open_tree fd) itself, as struct mount_attr asks */
static PyObject *sys_mount_setattr(PyObject *self, PyObject *args)
{
    int fd;
    unsigned long long attr_set, attr_clr;
    (void)self;
    if (!PyArg_ParseTuple(args, "iKK", &fd, &attr_set, &attr_clr))
        return NULL;
    struct { uint64_t set, clr, propagation, userns_fd; } attr = {attr_set, attr_clr, 0, 0};
    if (syscall(442 /* SYS_mount_setattr */, fd, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0)
        return raise_errno(NULL);
    Py_RETURN_NONE;
}

/* unshare(flags) */
static PyObject *sys_unshare(PyObject *self, PyObject *args)
{
    int flags;
    (void)self;
    if (!PyArg_ParseTuple(args, "i", &flags))
        return NULL;
    if (unshare(flags) < 0)
        return raise_errno(NULL);
    Py_RETURN_NONE;
}

/* setns(fd, nstype): fd may be a namespace file or a pidfd */
static PyObject *sys_setns(PyObject *self, PyObject *args)
{
    int fd, nstype;
    (void)self;
    if (!PyArg_ParseTuple(args, "ii", &fd, &nstype))
        return NULL;
    if (setns(fd, nstype) < 0)
        return raise_errno(NULL);
    Py_RETURN_NONE;
}

/* pidfd_getfd(pidfd, targetfd) -> fd: a duplicate (close-on-exec) of the
 * target process's open file, the same open file description, not a reopen */
static PyObject *sys_pidfd_getfd(PyObject *self, PyObject *args)
{
    int pidfd, target;
    (void)self;
    if (!PyArg_ParseTuple(args, "ii", &pidfd, &target))
        return NULL;
    long fd = syscall(SYS_pidfd_getfd, pidfd, target, 0);
    if (fd < 0)
        return raise_errno(NULL);
    return PyLong_FromLong(fd);
}

/* sethostname(name), setdomainname(name) */
static PyObject *sys_sethostname(PyObject *self, PyObject *args)
{
    const char *name;
    Py_ssize_t len;
    (void)self;
    if (!PyArg_ParseTuple(args, "s#", &name, &len))
        return NULL;
    if (sethostname(name, (size_t)len) < 0)
        return raise_errno(NULL);
    Py_RETURN_NONE;
}

static PyObject *sys_setdomainname(PyObject *self, PyObject *args)
{
    const char *name;
    Py_ssize_t len;
    (void)self;
    if (!PyArg_ParseTuple(args, "s#", &name, &len))
        return NULL;
    if (setdomainname(name, (size_t)len) < 0)
        return raise_errno(NULL);
    Py_RETURN_NONE;
}

/* prctl(option, arg2=0, arg3=0, arg4=0, arg5=0) -> int */
static PyObject *sys_prctl(PyObject *self, PyObject *args)
{
    int option;
    unsigned long a2 = 0, a3 = 0, a4 = 0, a5 = 0;
    (void)self;
    if (!PyArg_ParseTuple(args, "i|kkkk", &option, &a2, &a3, &a4, &a5))
        return NULL;
    int rc = prctl(option, a2, a3, a4, a5);
    if (rc < 0)
        return raise_errno(NULL);
    return PyLong_FromLong(rc);
}

/* capget() -> (effective, permitted, inheritable) as 64-bit masks */
static PyObject *sys_capget(PyObject *self, PyObject *args)
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    (void)self;
    (void)args;
    if (syscall(SYS_capget, &hdr, data) < 0)
        return raise_errno(NULL);
    unsigned long long eff = data[0].effective | ((unsigned long long)data[1].effective << 32);
    unsigned long long prm = data[0].permitted | ((unsigned long long)data[1].permitted << 32);
    unsigned long long inh = data[0].inheritable | ((unsigned long long)data[1].inheritable << 32);
    return Py_BuildValue("KKK", eff, prm, inh);
}

/* capset(effective, permitted, inheritable) for the calling thread */
static PyObject *sys_capset(PyObject *self, PyObject *args)
{
    unsigned long long eff, prm, inh;
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    (void)self;
    if (!PyArg_ParseTuple(args, "KKK", &eff, &prm, &inh))
        return NULL;
    data[0].effective = (uint32_t)eff;
    data[1].effective = (uint32_t)(eff >> 32);
    data[0].permitted = (uint32_t)prm;
    data[1].permitted = (uint32_t)(prm >> 32);
    data[0].inheritable = (uint32_t)inh;
    data[1].inheritable = (uint32_t)(inh >> 32);
    if (syscall(SYS_capset, &hdr, data) < 0)
        return raise_errno(NULL);
    Py_RETURN_NONE;
}

/* keyctl(KEYCTL_JOIN_SESSION_KEYRING, name) -> serial */
static PyObject *sys_join_session_keyring(PyObject *self, PyObject *args)
{
    const char *name;
    (void)self;
    if (!PyArg_ParseTuple(args, "z", &name))
        return NULL;
    long rc = syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, name);
    if (rc < 0)
        return raise_errno(NULL);
    return PyLong_FromLong(rc);
}

/* seccomp_load_bpf(program, flags): install a classic-BPF filter compiled
 * elsewhere (by libseccomp in the runtime, before the container's init
 * pivots into a rootfs where the library may not exist). */
static PyObject *sys_seccomp_load_bpf(PyObject *self, PyObject *args)
{
    Py_buffer prog;
    unsigned int flags;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*I", &prog, &flags))
        return NULL;
    if (prog.len == 0 || prog.len % sizeof(struct sock_filter) != 0 ||
        prog.len / sizeof(struct sock_filter) > 0xFFFF) {
        PyBuffer_Release(&prog);
        PyErr_SetString(PyExc_ValueError, "seccomp program size is not a multiple of 8");
        return NULL;
    }
    struct sock_fprog fprog = {
        .len = (unsigned short)(prog.len / sizeof(struct sock_filter)),
        .filter = (struct sock_filter *)prog.buf,
    };
    long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &fprog);
    PyBuffer_Release(&prog);
    if (rc < 0)
        return raise_errno(NULL);
    return PyLong_FromLong(rc);
}

/* loopback_up(): set "lo" of the caller's network namespace up (what a
 * new network namespace needs before anything in it can use 127.0.0.1). */
static PyObject *sys_loopback_up(PyObject *self, PyObject *noargs)
{
    (void)self;
    (void)noargs;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return raise_errno(NULL);
    struct ifreq ifr = {0};
    memcpy(ifr.ifr_name, "lo", 3);
    int rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
    if (rc == 0 && !(ifr.ifr_flags & IFF_UP)) {
        ifr.ifr_flags |= IFF_UP;
        rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
    }
    int saved = errno;
    close(fd);
    if (rc < 0) {
        errno = saved;
        return raise_errno("lo");
    }
    Py_RETURN_NONE;
}

/* setgroups/setresuid for the calling thread only are not needed: the
 * container init is single-threaded when it drops privileges. */

static PyMethodDef methods[] = {
    {"mount", sys_mount, METH_VARARGS, "mount(source, target, fstype, flags, data)"},
    {"umount2", sys_umount2, METH_VARARGS, "umount2(target, flags)"},
    {"pivot_root", sys_pivot_root, METH_VARARGS, "pivot_root(new_root, put_old)"},
    {"unshare", sys_unshare, METH_VARARGS, "unshare(flags)"},
    {"open_tree", sys_open_tree, METH_VARARGS, "open_tree(path, flags) -> fd"},
    {"mount_setattr", sys_mount_setattr, METH_VARARGS, "mount_setattr(fd, attr_set, attr_clr)"},
    {"setns", sys_setns, METH_VARARGS, "setns(fd, nstype)"},
    {"pidfd_getfd", sys_pidfd_getfd, METH_VARARGS, "pidfd_getfd(pidfd, targetfd) -> fd"},
    {"sethostname", sys_sethostname, METH_VARARGS, "sethostname(name)"},
    {"setdomainname", sys_setdomainname, METH_VARARGS, "setdomainname(name)"},
    {"prctl", sys_prctl, METH_VARARGS, "prctl(option, a2=0, a3=0, a4=0, a5=0) -> int"},
    {"capget", sys_capget, METH_NOARGS, "capget() -> (effective, permitted, inheritable)"},
    {"capset", sys_capset, METH_VARARGS, "capset(effective, permitted, inheritable)"},
    {"join_session_keyring", sys_join_session_keyring, METH_VARARGS,
     "join_session_keyring(name) -> serial"},
    {"seccomp_load_bpf", sys_seccomp_load_bpf, METH_VARARGS,
     "seccomp_load_bpf(program, flags): install a seccomp filter"},
    {"loopback_up", sys_loopback_up, METH_NOARGS, "loopback_up(): set lo up in this network namespace"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "xcontainers._sys",
    "System calls the standard library lacks; see xcontainers.kernel.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__sys(void)
{
    return PyModule_Create(&module);
}
