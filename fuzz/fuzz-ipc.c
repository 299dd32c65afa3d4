/* fuzz-ipc.c - the collector's two unix-socket inputs: IPC frames on
 * run/collector.sock and attribution datagrams on run/attrib.sock.
 *
 * The input is read as a byte stream of frames, the way ipc-server.c reads
 * it; every frame is unpacked as a Request and a Response, and the whole
 * input is also decoded as one attribution message. Invariants: a frame
 * never claims more than LW_IPC_MAX_FRAME, a decoded attribution's ports
 * are 1..65535 and its exe is NUL-terminated. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attrib.h"
#include "ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    for (int frames = 0; frames < 64 && off < size; frames++) {
        size_t payload = 0;
        LwIpcFrameResult r = lw_ipc_frame_peek(data + off, size - off, &payload);
        if (r != LW_IPC_FRAME_COMPLETE)
            break;
        if (payload > LW_IPC_MAX_FRAME || LW_IPC_HEADER_LEN + payload > size - off)
            abort();
        const uint8_t *p = data + off + LW_IPC_HEADER_LEN;
        Lw__Request *req = lw__request__unpack(NULL, payload, p);
        if (req != NULL)
            lw__request__free_unpacked(req, NULL);
        Lw__Response *resp = lw__response__unpack(NULL, payload, p);
        if (resp != NULL)
            lw__response__free_unpacked(resp, NULL);
        off += LW_IPC_HEADER_LEN + payload;
    }

    LwAttribution a;
    LwAttribKey key;
    if (lw_attrib_decode(data, size, &a, &key)) {
        if (key.client_port == 0 || key.server_port == 0 ||
            memchr(a.exe, '\0', sizeof a.exe) == NULL)
            abort();
    }
    return 0;
}
