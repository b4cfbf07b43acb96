# syntax=docker/dockerfile:1
#
# aksnet-top: the per-node agent (`aksnet-top agent run`, run by the DaemonSet from
# `aksnet-top agent manifest`) and the headless CLI (`aksnet-top check`).
#
# Build it in your own registry (no Docker engine needed on your machine):
#   az acr build --registry <acr> --image aksnet-top:<tag> .
# (arm64 node pools: add --platform linux/arm64, or build both and push a manifest list.)
#
# Runtime posture (see probes/agent/manifest.py): non-root uid/gid 65532, read-only root
# filesystem, no setuid/setgid binaries, and one file capability, cap_net_raw+p on the
# Python interpreter: when the pod adds NET_RAW, the non-root agent keeps it across exec
# (even with allowPrivilegeEscalation: false) and raises it to effective at start to send
# raw TCP SYNs (SYN-mode egress checks). Without NET_RAW it runs in connect mode.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------- build stage
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY pyproject.toml README.md ./
COPY probes ./probes
COPY tui ./tui
# The project and its runtime dependencies only (no [test] extras), under /install: the
# runtime stage copies that tree and gets neither pip caches nor the build frontend.
# pip compiles the .pyc files here, so the read-only runtime never needs to write them.
RUN python -m pip install --prefix=/install .

# ---------------------------------------------------------------- runtime stage
FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
COPY --from=build /install /usr/local
# 1. A named user for uid/gid 65532 (no home, no shell): tools that look the uid up work.
# 2. No setuid/setgid binaries (su, mount, passwd...): nothing in the image can raise
#    privileges, whatever the pod's settings.
# 3. NET_RAW for the non-root interpreter as a file capability, permitted only (no
#    effective bit, the `ping` model): `aksnet-top agent run` raises it itself, and the
#    interpreter still starts where NET_RAW is not in the bounding set (an effective bit
#    would make such an exec fail with EPERM). It is set in this stage because COPY
#    --from does not carry file capabilities (moby/moby#38132, moby/buildkit#2250), and
#    with os.setxattr so that libcap2-bin (setcap) is not needed anywhere: the 20 bytes
#    are what `setcap cap_net_raw+p` writes (VFS_CAP_REVISION_2, permitted = bit 13).
# 4. Self-test, as the pod runs it: uid 65532 under no_new_privs must get NET_RAW
#    effective and open a raw socket (the build's default capability set has NET_RAW).
RUN echo 'nonroot:x:65532:65532:aksnet-top:/tmp:/usr/sbin/nologin' >> /etc/passwd \
 && echo 'nonroot:x:65532:' >> /etc/group \
 && find / -xdev -type f -perm /6000 -exec chmod a-s {} + \
 && python3 -c "import os, struct; p = os.path.realpath('/usr/local/bin/python3.11'); cap = struct.pack('<5I', 0x02000000, 1 << 13, 0, 0, 0); os.setxattr(p, 'security.capability', cap); assert os.getxattr(p, 'security.capability') == cap; print(p, 'cap_net_raw+p')" \
 && aksnet-top --version \
 && setpriv --reuid=65532 --regid=65532 --clear-groups --no-new-privs python3 -c "import socket, sys; from probes.agent.cli import raise_net_raw; ok = raise_net_raw(); ok and socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP).close(); sys.exit(0 if ok else 'uid 65532 did not get CAP_NET_RAW from the interpreter file capability')"
USER 65532:65532
WORKDIR /tmp
EXPOSE 9102
ENTRYPOINT ["aksnet-top"]
CMD ["--help"]
