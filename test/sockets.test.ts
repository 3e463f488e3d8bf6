// bench/cluster/sockets.ts counts a process's connections to the API server,
// for the bench and for the e2e test that fails when API calls stop sharing
// their pool. A miscount there fails that test (or passes it) for the wrong
// reason, so the counting is checked here: on a table the kernel could serve,
// and on real sockets.
import assert from "node:assert/strict";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { describe, it } from "node:test";
import { connectionsTo, establishedTo } from "../bench/cluster/sockets.ts";

const HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";
// Local port 0x9C40 = 40000 and 0x9C41 = 40001; remote port 0x1A0B = 6667.
const row = (sl: number, local: string, remote: string, state: string, inode: string) =>
  `  ${sl}: ${local} ${remote} ${state} 00000000:00000000 00:00000000 00000000  1000        0 ${inode} 1 0000000000000000 20 4 30 10 -1`;

describe("establishedTo", () => {
  it("counts a socket the kernel listed twice in one read once", () => {
    const table = [
      HEADER,
      row(0, "0100007F:9C40", "0100007F:1A0B", "01", "111"),
      row(1, "0100007F:9C41", "0100007F:1A0B", "01", "222"),
      // The same socket again, as a read across a page boundary can show it.
      row(2, "0100007F:9C40", "0100007F:1A0B", "01", "111"),
      "",
    ].join("\n");
    assert.deepEqual([...establishedTo(table, new Set(["111", "222"]), 0x1a0b).values()].sort(), [40000, 40001]);
  });

  it("leaves out other processes' sockets, other remote ports and connections not ESTABLISHED", () => {
    const table = [
      HEADER,
      row(0, "0100007F:9C40", "0100007F:1A0B", "01", "111"),
      row(1, "0100007F:9C41", "0100007F:1A0B", "01", "999"), // not this process's
      row(2, "0100007F:9C42", "0100007F:1A0C", "01", "333"), // another port
      row(3, "0100007F:9C43", "0100007F:1A0B", "06", "444"), // TIME_WAIT
      row(4, "0100007F:9C44", "0100007F:1A0B", "08", "555"), // CLOSE_WAIT
    ].join("\n");
    assert.deepEqual([...establishedTo(table, new Set(["111", "333", "444", "555"]), 0x1a0b).values()], [40000]);
  });

  it("adds to the map it is given, so tcp and tcp6 together count each socket once", () => {
    const found = establishedTo([HEADER, row(0, "0100007F:9C40", "0100007F:1A0B", "01", "111")].join("\n"), new Set(["111", "222"]), 0x1a0b);
    const v6 = [HEADER, row(0, "00000000000000000000000001000000:9C41", "00000000000000000000000001000000:1A0B", "01", "222")].join("\n");
    assert.deepEqual([...establishedTo(v6, new Set(["111", "222"]), 0x1a0b, found).values()], [40000, 40001]);
  });
});

describe("connectionsTo", { skip: existsSync("/proc/self/fd") ? false : "no /proc here" }, () => {
  it("finds exactly this process's open connections to a port, by their local ports", async () => {
    const server = createServer((socket) => socket.on("error", () => {}));
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const address = server.address();
    assert.ok(address !== null && typeof address === "object");
    const sockets: Socket[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const socket = connect(address.port, "127.0.0.1");
        await once(socket, "connect");
        sockets.push(socket);
      }
      assert.deepEqual(connectionsTo(process.pid, address.port).sort(), sockets.map((s) => s.localPort).sort());
      const closing = sockets.pop();
      assert.ok(closing);
      closing.destroy();
      await once(closing, "close");
      assert.deepEqual(connectionsTo(process.pid, address.port).sort(), sockets.map((s) => s.localPort).sort());
    } finally {
      for (const socket of sockets) socket.destroy();
      server.close();
    }
  });
});
