# Declarations of the Linux socket calls the egress and the RTP counter batch
# their packets through (sendmmsg, recvmmsg, scattered iovecs, ancillary data).

cdef extern from "<sys/types.h>":
    ctypedef unsigned int socklen_t


cdef extern from "<sys/uio.h>" nogil:
    struct iovec:
        void *iov_base
        size_t iov_len


cdef extern from "<sys/socket.h>" nogil:
    struct sockaddr:
        pass

    struct sockaddr_storage:
        pass

    struct msghdr:
        void *msg_name
        socklen_t msg_namelen
        iovec *msg_iov
        size_t msg_iovlen
        void *msg_control
        size_t msg_controllen
        int msg_flags

    struct mmsghdr:
        msghdr msg_hdr
        unsigned int msg_len

    struct cmsghdr:
        size_t cmsg_len
        int cmsg_level
        int cmsg_type

    int sendmmsg(int sockfd, mmsghdr *msgvec, unsigned int vlen, int flags)
    int recvmmsg(int sockfd, mmsghdr *msgvec, unsigned int vlen, int flags, void *timeout)
    ssize_t recv(int sockfd, void *buf, size_t len, int flags)
    cmsghdr *CMSG_FIRSTHDR(msghdr *msgh)
    unsigned char *CMSG_DATA(cmsghdr *cmsg)
    size_t CMSG_SPACE(size_t length)
    size_t CMSG_LEN(size_t length)
    int AF_INET
    int AF_INET6
    int MSG_DONTWAIT
