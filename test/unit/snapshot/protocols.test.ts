import { describe, expect, test } from "bun:test";
import {
  EPHEMERAL_PORT_MIN,
  EPHEMERAL_RANGE_SERVICE_PORTS,
  identifyInet,
  identifyUnix,
  SERVICES,
  servicesForPort,
  SHARED_PORTS,
  UNIX_SOCKETS,
  type ProtocolGuess,
} from "../../../src/snapshot/protocols.ts";

type Transport = "tcp" | "udp";

/** A `listening` callback from "tcp/22"-style keys. */
const listeningOn = (...keys: string[]) => (transport: Transport, port: number) => keys.includes(`${transport}/${port}`);

interface InetCase {
  name: string;
  transport: "tcp" | "udp" | "raw";
  state: string;
  local: number | null;
  remote: number | null;
  listening?: string[];
  proc?: string | null;
  expect: Pick<ProtocolGuess, "protocol" | "rule" | "service_side" | "confidence"> & { service_port?: number | null };
}

function guess(c: InetCase): ProtocolGuess {
  return identifyInet({ transport: c.transport, state: c.state, localPort: c.local, remotePort: c.remote, listening: listeningOn(...(c.listening ?? [])), processName: c.proc ?? null });
}

function runCases(cases: InetCase[]) {
  for (const c of cases) {
    test(c.name, () => {
      const g = guess(c);
      expect({ protocol: g.protocol, rule: g.rule, service_side: g.service_side, confidence: g.confidence }).toEqual({
        protocol: c.expect.protocol, rule: c.expect.rule, service_side: c.expect.service_side, confidence: c.expect.confidence,
      });
      if (c.expect.service_port !== undefined) expect(g.service_port).toBe(c.expect.service_port);
      expect(g.reason.length).toBeGreaterThan(20);
    });
  }
}

describe("identifyInet decides the service side first", () => {
  runCases([
    { name: "a LISTEN socket on 22 owned by sshd is SSH, surely", transport: "tcp", state: "LISTEN", local: 22, remote: null, proc: "sshd",
      expect: { protocol: "ssh", rule: "listening-port", service_side: "local", confidence: "high", service_port: 22 } },
    { name: "a LISTEN socket counts as listening even when the callback does not say so", transport: "tcp", state: "LISTEN", local: 5432, remote: null, proc: "postgres",
      expect: { protocol: "postgresql", rule: "listening-port", service_side: "local", confidence: "high", service_port: 5432 } },
    { name: "an accepted connection on listening 22 from remote 50000 is SSH on the local side", transport: "tcp", state: "ESTAB", local: 22, remote: 50000, listening: ["tcp/22"], proc: "sshd-session",
      expect: { protocol: "ssh", rule: "listening-port", service_side: "local", confidence: "high", service_port: 22 } },
    { name: "an accepted connection stays local even when the client's source port is well-known", transport: "tcp", state: "ESTAB", local: 2049, remote: 700, listening: ["tcp/2049"], proc: null,
      expect: { protocol: "nfs", rule: "listening-port", service_side: "local", confidence: "medium", service_port: 2049 } },
    { name: "an outbound connection from ephemeral 50000 to 5432 is PostgreSQL on the remote side", transport: "tcp", state: "ESTAB", local: 50000, remote: 5432, proc: "python3",
      expect: { protocol: "postgresql", rule: "well-known-remote-port", service_side: "remote", confidence: "medium", service_port: 5432 } },
    { name: "a known client makes an outbound guess sure: psql to 5432", transport: "tcp", state: "ESTAB", local: 50000, remote: 5432, proc: "psql",
      expect: { protocol: "postgresql", rule: "well-known-remote-port", service_side: "remote", confidence: "high" } },
    { name: "a SYN-SENT to 443 from curl is HTTPS on the remote side", transport: "tcp", state: "SYN-SENT", local: 45678, remote: 443, proc: "curl",
      expect: { protocol: "https", rule: "well-known-remote-port", service_side: "remote", confidence: "high" } },
    { name: "an NFS client's reserved source port does not hide the remote 2049", transport: "tcp", state: "ESTAB", local: 665, remote: 2049, proc: null,
      expect: { protocol: "nfs", rule: "well-known-remote-port", service_side: "remote", confidence: "medium" } },
    { name: "when both ends are well-known and the local one is not listening, the remote one is the service", transport: "tcp", state: "ESTAB", local: 443, remote: 5432, proc: null,
      expect: { protocol: "postgresql", rule: "well-known-remote-port", service_side: "remote", confidence: "medium" } },
    { name: "a local 443 that nothing listens on, talking to ephemeral 50000, is a leftover HTTPS connection, one level less sure", transport: "tcp", state: "ESTAB", local: 443, remote: 50000, proc: null,
      expect: { protocol: "https", rule: "well-known-local-port", service_side: "local", confidence: "low", service_port: 443 } },
    { name: "a leftover sshd connection on non-listening 22 is SSH, medium", transport: "tcp", state: "ESTAB", local: 22, remote: 50123, proc: "sshd",
      expect: { protocol: "ssh", rule: "well-known-local-port", service_side: "local", confidence: "medium" } },
    { name: "BGP between two routers on 179 is BGP whichever side listens", transport: "tcp", state: "ESTAB", local: 179, remote: 179, listening: ["tcp/179"], proc: "bird",
      expect: { protocol: "bgp", rule: "listening-port", service_side: "local", confidence: "high" } },
  ]);
});

describe("identifyInet treats UDP servers without LISTEN by their local port", () => {
  runCases([
    { name: "UNCONN UDP on 53 owned by dnsmasq is DNS", transport: "udp", state: "UNCONN", local: 53, remote: null, proc: "dnsmasq",
      expect: { protocol: "dns", rule: "well-known-local-port", service_side: "local", confidence: "high", service_port: 53 } },
    { name: "UNCONN UDP on 53 owned by systemd-resolved (comm truncated to 15) is DNS", transport: "udp", state: "UNCONN", local: 53, remote: null, proc: "systemd-resolve",
      expect: { protocol: "dns", rule: "well-known-local-port", service_side: "local", confidence: "high" } },
    { name: "UNCONN UDP on 123 owned by chronyd is NTP", transport: "udp", state: "UNCONN", local: 123, remote: null, proc: "chronyd",
      expect: { protocol: "ntp", rule: "well-known-local-port", service_side: "local", confidence: "high" } },
    { name: "UNCONN UDP on 514 owned by rsyslogd is syslog", transport: "udp", state: "UNCONN", local: 514, remote: null, proc: "rsyslogd",
      expect: { protocol: "syslog", rule: "well-known-local-port", service_side: "local", confidence: "high" } },
    { name: "UNCONN UDP on 514 without a process is syslog, medium", transport: "udp", state: "UNCONN", local: 514, remote: null, proc: null,
      expect: { protocol: "syslog", rule: "well-known-local-port", service_side: "local", confidence: "medium" } },
    { name: "UNCONN UDP on 323 owned by chronyd is chrony's command port", transport: "udp", state: "UNCONN", local: 323, remote: null, proc: "chronyd",
      expect: { protocol: "chrony-cmd", rule: "well-known-local-port", service_side: "local", confidence: "high" } },
    { name: "UNCONN UDP on 5405 owned by corosync is Corosync", transport: "udp", state: "UNCONN", local: 5405, remote: null, proc: "corosync",
      expect: { protocol: "corosync", rule: "well-known-local-port", service_side: "local", confidence: "high" } },
    { name: "a UDP port the caller reports as listening takes the listening-port rule", transport: "udp", state: "UNCONN", local: 53, remote: null, listening: ["udp/53"], proc: "named",
      expect: { protocol: "dns", rule: "listening-port", service_side: "local", confidence: "high" } },
    { name: "a connected UDP socket from ephemeral to 53 is a DNS query on the remote side", transport: "udp", state: "ESTAB", local: 40000, remote: 53, proc: "systemd-resolve",
      expect: { protocol: "dns", rule: "well-known-remote-port", service_side: "remote", confidence: "high" } },
    { name: "the kernel's WireGuard socket on 51820 is WireGuard, but only low: the port is in the ephemeral range", transport: "udp", state: "UNCONN", local: 51820, remote: null, proc: null,
      expect: { protocol: "wireguard", rule: "well-known-local-port", service_side: "local", confidence: "low" } },
    { name: "an outbound UDP flow to remote 51820 is WireGuard, low", transport: "udp", state: "ESTAB", local: 51820, remote: 51820, proc: null,
      expect: { protocol: "wireguard", rule: "well-known-remote-port", service_side: "remote", confidence: "low" } },
    { name: "UDP 443 is HTTP/3 (QUIC), named https", transport: "udp", state: "ESTAB", local: 41000, remote: 443, proc: null,
      expect: { protocol: "https", rule: "well-known-remote-port", service_side: "remote", confidence: "medium" } },
  ]);
});

describe("identifyInet lets process names decide shared ports", () => {
  runCases([
    { name: "9090 owned by cockpit-ws is Cockpit", transport: "tcp", state: "LISTEN", local: 9090, remote: null, proc: "cockpit-ws",
      expect: { protocol: "cockpit", rule: "listening-port", service_side: "local", confidence: "high" } },
    { name: "9090 owned by prometheus is Prometheus", transport: "tcp", state: "LISTEN", local: 9090, remote: null, proc: "prometheus",
      expect: { protocol: "prometheus", rule: "listening-port", service_side: "local", confidence: "high" } },
    { name: "9090 held by systemd is socket-activated cockpit.socket", transport: "tcp", state: "LISTEN", local: 9090, remote: null, proc: "systemd",
      expect: { protocol: "cockpit", rule: "listening-port", service_side: "local", confidence: "high" } },
    { name: "9090 without a process falls back to Prometheus, low", transport: "tcp", state: "LISTEN", local: 9090, remote: null, proc: null,
      expect: { protocol: "prometheus", rule: "listening-port", service_side: "local", confidence: "low" } },
    { name: "9000 owned by php-fpm8.2 is FastCGI (version suffix ignored)", transport: "tcp", state: "LISTEN", local: 9000, remote: null, proc: "php-fpm8.2",
      expect: { protocol: "fastcgi", rule: "listening-port", service_side: "local", confidence: "high" } },
    { name: "9000 owned by clickhouse-server (comm clickhouse-serv) is ClickHouse", transport: "tcp", state: "LISTEN", local: 9000, remote: null, proc: "clickhouse-serv",
      expect: { protocol: "clickhouse", rule: "listening-port", service_side: "local", confidence: "high" } },
    { name: "9000 owned by minio is MinIO", transport: "tcp", state: "LISTEN", local: 9000, remote: null, proc: "minio",
      expect: { protocol: "minio", rule: "listening-port", service_side: "local", confidence: "high" } },
    { name: "9093 owned by java is Kafka, as Alertmanager is not a JVM", transport: "tcp", state: "LISTEN", local: 9093, remote: null, proc: "java",
      expect: { protocol: "kafka", rule: "listening-port", service_side: "local", confidence: "high" } },
    { name: "9093 owned by alertmanager is Alertmanager", transport: "tcp", state: "LISTEN", local: 9093, remote: null, proc: "alertmanager",
      expect: { protocol: "alertmanager", rule: "listening-port", service_side: "local", confidence: "high" } },
    { name: "3000 owned by grafana is Grafana", transport: "tcp", state: "LISTEN", local: 3000, remote: null, proc: "grafana",
      expect: { protocol: "grafana", rule: "listening-port", service_side: "local", confidence: "high" } },
    { name: "3000 owned by node is a low Grafana guess (node names no service)", transport: "tcp", state: "LISTEN", local: 3000, remote: null, proc: "node",
      expect: { protocol: "grafana", rule: "listening-port", service_side: "local", confidence: "low" } },
    { name: "8080 owned by nginx is HTTP on an alternative port, surely", transport: "tcp", state: "LISTEN", local: 8080, remote: null, proc: "nginx",
      expect: { protocol: "http-alt", rule: "listening-port", service_side: "local", confidence: "high" } },
    { name: "8080 owned by java is only a low HTTP guess", transport: "tcp", state: "LISTEN", local: 8080, remote: null, proc: "java",
      expect: { protocol: "http-alt", rule: "listening-port", service_side: "local", confidence: "low" } },
    { name: "8443 without a process is a low HTTPS guess", transport: "tcp", state: "LISTEN", local: 8443, remote: null, proc: null,
      expect: { protocol: "https-alt", rule: "listening-port", service_side: "local", confidence: "low" } },
    { name: "8000 owned by ipcscope is ipcscope itself", transport: "tcp", state: "LISTEN", local: 8000, remote: null, proc: "ipcscope",
      expect: { protocol: "ipcscope", rule: "listening-port", service_side: "local", confidence: "high" } },
    { name: "an outbound connection to 9100 from CUPS's socket backend is JetDirect", transport: "tcp", state: "ESTAB", local: 45000, remote: 9100, proc: "socket",
      expect: { protocol: "jetdirect", rule: "well-known-remote-port", service_side: "remote", confidence: "high" } },
    { name: "an outbound connection to 9100 from prometheus is node_exporter", transport: "tcp", state: "ESTAB", local: 45000, remote: 9100, proc: "prometheus",
      expect: { protocol: "node-exporter", rule: "well-known-remote-port", service_side: "remote", confidence: "high" } },
    { name: "an outbound connection to 9090 from an unknown client is a low Prometheus guess", transport: "tcp", state: "ESTAB", local: 45000, remote: 9090, proc: "firefox",
      expect: { protocol: "prometheus", rule: "well-known-remote-port", service_side: "remote", confidence: "low" } },
  ]);

  test("the reason of a shared port names the alternatives", () => {
    const g = guess({ name: "", transport: "tcp", state: "LISTEN", local: 9090, remote: null, proc: null, expect: {} as never });
    expect(g.reason).toContain("Prometheus");
    expect(g.reason).toContain("Cockpit");
    expect(g.reason).toContain("guess");
  });
});

describe("identifyInet weighs the process name against the port", () => {
  runCases([
    { name: "postgres listening on 6000 is PostgreSQL, low, though 6000 is X11's port", transport: "tcp", state: "LISTEN", local: 6000, remote: null, proc: "postgres",
      expect: { protocol: "postgresql", rule: "listening-port", service_side: "local", confidence: "low", service_port: 6000 } },
    { name: "redis-server listening on 6380 is Redis, low: only the process says so", transport: "tcp", state: "LISTEN", local: 6380, remote: null, proc: "redis-server",
      expect: { protocol: "redis", rule: "listening-port", service_side: "local", confidence: "low" } },
    { name: "sshd on 2222 is SSH, low", transport: "tcp", state: "LISTEN", local: 2222, remote: null, proc: "sshd",
      expect: { protocol: "ssh", rule: "listening-port", service_side: "local", confidence: "low" } },
    { name: "haproxy on 5432 fronts PostgreSQL: a proxy's name does not beat the port", transport: "tcp", state: "LISTEN", local: 5432, remote: null, proc: "haproxy",
      expect: { protocol: "postgresql", rule: "listening-port", service_side: "local", confidence: "medium" } },
    { name: "docker-proxy on 6379 is Redis, medium", transport: "tcp", state: "LISTEN", local: 6379, remote: null, proc: "docker-proxy",
      expect: { protocol: "redis", rule: "listening-port", service_side: "local", confidence: "medium" } },
    { name: "systemd holding 22 for socket activation is SSH, medium", transport: "tcp", state: "LISTEN", local: 22, remote: null, proc: "systemd",
      expect: { protocol: "ssh", rule: "listening-port", service_side: "local", confidence: "medium" } },
    { name: "java on 5432 is PostgreSQL by port, medium: a runtime names no service", transport: "tcp", state: "LISTEN", local: 5432, remote: null, proc: "java",
      expect: { protocol: "postgresql", rule: "listening-port", service_side: "local", confidence: "medium" } },
    { name: "java on 9200 is Elasticsearch, high", transport: "tcp", state: "LISTEN", local: 9200, remote: null, proc: "java",
      expect: { protocol: "elasticsearch", rule: "listening-port", service_side: "local", confidence: "high" } },
    { name: "no process on 3306 is MySQL, medium", transport: "tcp", state: "LISTEN", local: 3306, remote: null, proc: null,
      expect: { protocol: "mysql", rule: "listening-port", service_side: "local", confidence: "medium" } },
    { name: "mariadbd on 3306 is MySQL/MariaDB, high", transport: "tcp", state: "LISTEN", local: 3306, remote: null, proc: "mariadbd",
      expect: { protocol: "mysql", rule: "listening-port", service_side: "local", confidence: "high" } },
    { name: "mysqld on 4567 is Galera replication", transport: "tcp", state: "LISTEN", local: 4567, remote: null, proc: "mysqld",
      expect: { protocol: "galera", rule: "listening-port", service_side: "local", confidence: "high" } },
    { name: "the kernel's NFS server on 2049 has no process: NFS, medium", transport: "tcp", state: "LISTEN", local: 2049, remote: null, proc: null,
      expect: { protocol: "nfs", rule: "listening-port", service_side: "local", confidence: "medium" } },
    { name: "nginx on 443 is HTTPS, high", transport: "tcp", state: "LISTEN", local: 443, remote: null, proc: "nginx",
      expect: { protocol: "https", rule: "listening-port", service_side: "local", confidence: "high" } },
    { name: "apache2 on 80 is HTTP, high", transport: "tcp", state: "LISTEN", local: 80, remote: null, proc: "apache2",
      expect: { protocol: "http", rule: "listening-port", service_side: "local", confidence: "high" } },
    { name: "postfix's master on 25 is SMTP, high", transport: "tcp", state: "LISTEN", local: 25, remote: null, proc: "master",
      expect: { protocol: "smtp", rule: "listening-port", service_side: "local", confidence: "high" } },
    { name: "kube-apiserver on 6443 is the Kubernetes API", transport: "tcp", state: "LISTEN", local: 6443, remote: null, proc: "kube-apiserver",
      expect: { protocol: "kubernetes-api", rule: "listening-port", service_side: "local", confidence: "high" } },
    { name: "kubelet on 10250 is the kubelet API", transport: "tcp", state: "LISTEN", local: 10250, remote: null, proc: "kubelet",
      expect: { protocol: "kubelet", rule: "listening-port", service_side: "local", confidence: "high" } },
    { name: "etcd on 2380 is etcd peer traffic", transport: "tcp", state: "LISTEN", local: 2380, remote: null, proc: "etcd",
      expect: { protocol: "etcd", rule: "listening-port", service_side: "local", confidence: "high" } },
    { name: "systemd-journal-remote (comm systemd-journal) on 19532 is journal-remote", transport: "tcp", state: "LISTEN", local: 19532, remote: null, proc: "systemd-journal",
      expect: { protocol: "journal-remote", rule: "listening-port", service_side: "local", confidence: "high" } },
    { name: "the process name is matched case-insensitively", transport: "udp", state: "UNCONN", local: 68, remote: null, proc: "NetworkManager",
      expect: { protocol: "dhcp", rule: "well-known-local-port", service_side: "local", confidence: "high" } },
  ]);
});

describe("identifyInet says unknown when nothing matches", () => {
  runCases([
    { name: "ephemeral to ephemeral is unknown", transport: "tcp", state: "ESTAB", local: 41234, remote: 38567, proc: "foo",
      expect: { protocol: "unknown", rule: "none", service_side: null, confidence: "low", service_port: null } },
    { name: "a listening port that no table and no process name knows is unknown, but its side is local", transport: "tcp", state: "LISTEN", local: 41234, remote: null, proc: "myapp",
      expect: { protocol: "unknown", rule: "none", service_side: "local", confidence: "low", service_port: 41234 } },
    { name: "an unconnected UDP socket on an ephemeral port is unknown", transport: "udp", state: "UNCONN", local: 45555, remote: null, proc: "chronyd",
      expect: { protocol: "unknown", rule: "none", service_side: null, confidence: "low" } },
    { name: "a raw socket is unknown: it has no ports", transport: "raw", state: "UNCONN", local: null, remote: null, proc: "ping",
      expect: { protocol: "unknown", rule: "none", service_side: null, confidence: "low" } },
    { name: "port 0 and nulls are treated as no port", transport: "tcp", state: "CLOSE", local: 0, remote: null, proc: null,
      expect: { protocol: "unknown", rule: "none", service_side: null, confidence: "low" } },
    { name: "a proxy on an unknown port does not name a protocol", transport: "tcp", state: "LISTEN", local: 41000, remote: null, proc: "docker-proxy",
      expect: { protocol: "unknown", rule: "none", service_side: "local", confidence: "low" } },
  ]);

  test("the unknown reason shows both ports and which are ephemeral", () => {
    const g = identifyInet({ transport: "tcp", state: "ESTAB", localPort: 41234, remotePort: 38567, listening: () => false });
    expect(g.reason).toContain("no well-known port on either side");
    expect(g.reason).toContain("41234 (ephemeral) → 38567 (ephemeral)");
  });
});

describe("the reasons read as sentences a person understands", () => {
  test("a listening PostgreSQL says the port, that it listens, and the process", () => {
    const g = identifyInet({ transport: "tcp", state: "LISTEN", localPort: 5432, remotePort: null, listening: () => false, processName: "postgres" });
    expect(g.reason).toBe("local port 5432 is listening and is PostgreSQL's port; the process is postgres");
  });

  test("an accepted connection says so", () => {
    const g = identifyInet({ transport: "tcp", state: "ESTAB", localPort: 22, remotePort: 50000, listening: listeningOn("tcp/22"), processName: "sshd" });
    expect(g.reason).toContain("accepted connection");
  });

  test("an outbound connection says so", () => {
    const g = identifyInet({ transport: "tcp", state: "ESTAB", localPort: 50000, remotePort: 5432, listening: () => false });
    expect(g.reason).toContain("outbound connection");
    expect(g.reason).toContain("remote port 5432");
  });

  test("a process-only guess says the port usually means something else", () => {
    const g = identifyInet({ transport: "tcp", state: "LISTEN", localPort: 6000, remotePort: null, listening: () => false, processName: "postgres" });
    expect(g.reason).toContain("X11");
    expect(g.reason).toContain("only the process name");
  });
});

describe("identifyUnix", () => {
  const cases: [string | null, string | null, string, ProtocolGuess["confidence"]][] = [
    ["/run/dbus/system_bus_socket", "dbus-broker", "dbus", "high"],
    ["/var/run/dbus/system_bus_socket", null, "dbus", "high"],
    ["@/tmp/dbus-Ab12Cd34Ef", null, "dbus", "high"],
    ["/run/user/1000/bus", "dbus-daemon", "dbus", "high"],
    ["/run/systemd/journal/socket", "systemd-journal", "journald", "high"],
    ["/run/systemd/journal/stdout", null, "journald", "high"],
    ["/dev/log", "rsyslogd", "syslog", "high"],
    ["/run/systemd/journal/dev-log", null, "syslog", "high"],
    ["/run/systemd/notify", "systemd", "sd-notify", "high"],
    ["/run/systemd/private", "systemd", "systemd-private", "high"],
    ["/run/systemd/userdb/io.systemd.DynamicUser", null, "varlink", "high"],
    ["/run/udev/control", "systemd-udevd", "udev-control", "high"],
    ["/run/docker.sock", "dockerd", "docker-api", "high"],
    ["/var/run/docker.sock", null, "docker-api", "high"],
    ["/run/containerd/containerd.sock", "containerd", "containerd", "high"],
    ["/run/podman/podman.sock", null, "podman-api", "high"],
    ["/run/user/1000/podman/podman.sock", null, "podman-api", "high"],
    ["/var/run/crio/crio.sock", "crio", "cri-o", "high"],
    ["/var/run/postgresql/.s.PGSQL.5432", "postgres", "postgresql", "high"],
    ["/tmp/.s.PGSQL.5433", null, "postgresql", "high"],
    ["/var/lib/mysql/mysql.sock", "mysqld", "mysql", "high"],
    ["/run/mysqld/mysqld.sock", null, "mysql", "high"],
    ["/run/redis/redis.sock", null, "redis", "medium"],
    ["/var/run/redis/redis-server.sock", "redis-server", "redis", "high"],
    ["/run/php-fpm/www.sock", "php-fpm", "fastcgi", "high"],
    ["/run/php/php8.1-fpm.sock", null, "fastcgi", "medium"],
    ["/tmp/.X11-unix/X0", "Xorg", "x11", "high"],
    ["@/tmp/.X11-unix/X0", null, "x11", "high"],
    ["/run/user/1000/wayland-0", null, "wayland", "high"],
    ["/tmp/ssh-XXXXabcd12/agent.4321", "ssh-agent", "ssh-agent", "high"],
    ["/run/user/1000/gnupg/S.gpg-agent", "gpg-agent", "gpg-agent", "high"],
    ["/var/run/nscd/socket", "nscd", "nscd", "high"],
    ["/var/lib/sss/pipes/nss", "sssd_nss", "sssd", "high"],
    ["/var/lib/sss/pipes/private/sbus-monitor", null, "sssd", "high"],
    ["/run/snapd.socket", null, "snapd-api", "high"],
    ["/run/libvirt/libvirt-sock", "libvirtd", "libvirt", "high"],
    ["/run/libvirt/virtqemud-sock-ro", null, "libvirt", "high"],
    ["/run/cockpit/wsinstance/https-factory.sock", null, "cockpit", "high"],
    ["/run/chrony/chronyd.sock", "chronyd", "chrony-cmd", "high"],
    ["/run/rpcbind.sock", "rpcbind", "rpcbind", "high"],
    ["/run/setrans/.setrans-unix", "mcstransd", "selinux-setrans", "high"],
    ["/var/run/audispd_events", "auditd", "auditd", "high"],
    ["/run/NetworkManager/private-dhcp", "NetworkManager", "networkmanager", "high"],
    ["/dev/gpmctl", "gpm", "gpm", "high"],
    ["@ISCSIADM_ABSTRACT_NAMESPACE", "iscsid", "iscsid", "high"],
    ["/run/irqbalance/irqbalance1234.sock", null, "irqbalance", "high"],
    ["/var/spool/postfix/private/smtp", "master", "postfix-internal", "high"],
  ];
  for (const [path, proc, protocol, confidence] of cases) {
    test(`${path} is ${protocol}, ${confidence}${proc ? ` (process ${proc})` : ""}`, () => {
      const g = identifyUnix({ path, processName: proc });
      expect({ protocol: g.protocol, rule: g.rule, confidence: g.confidence }).toEqual({ protocol, rule: "unix-path", confidence });
      expect(g.service_port).toBeNull();
      expect(g.reason).toContain(path!);
    });
  }

  test("an unknown path is unknown and the reason names the path", () => {
    const g = identifyUnix({ path: "/srv/myapp/app.sock", processName: "myapp" });
    expect(g).toMatchObject({ protocol: "unknown", rule: "none", confidence: "low", service_port: null, service_side: null });
    expect(g.reason).toContain("/srv/myapp/app.sock");
  });

  test("a socket without a name (null or ss's *) is unknown and says to look at its peer", () => {
    for (const path of [null, "*", ""]) {
      const g = identifyUnix({ path });
      expect(g.protocol).toBe("unknown");
      expect(g.reason).toContain("peer");
    }
  });

  test("every Unix rule has a lowercase protocol, a title and lowercase process names", () => {
    for (const rule of UNIX_SOCKETS) {
      expect(rule.protocol).toMatch(/^[a-z0-9][a-z0-9-]*$/);
      expect(rule.title.length).toBeGreaterThan(0);
      for (const name of rule.processes ?? []) expect(name).toBe(name.toLowerCase());
    }
  });
});

describe("SERVICES", () => {
  const key = (transport: Transport, port: number) => `${transport}/${port}`;

  test("lists at least a hundred services", () => {
    expect(SERVICES.length).toBeGreaterThanOrEqual(100);
  });

  test("names are unique, lowercase, and every entry has a title and a description", () => {
    const names = SERVICES.map((s) => s.name);
    expect(new Set(names).size).toBe(names.length);
    for (const s of SERVICES) {
      expect(s.name).toMatch(/^[a-z0-9][a-z0-9-]*$/);
      expect(s.title.trim().length).toBeGreaterThan(0);
      expect(s.description.trim().length).toBeGreaterThan(0);
    }
  });

  test("ports are integers within 1..65535, none repeated in one entry, on tcp or udp", () => {
    for (const s of SERVICES) {
      expect(s.ports.length).toBeGreaterThan(0);
      expect(new Set(s.ports).size).toBe(s.ports.length);
      for (const port of s.ports) expect(Number.isInteger(port) && port >= 1 && port <= 65535).toBe(true);
      expect(s.transports.length).toBeGreaterThan(0);
      for (const t of s.transports) expect(["tcp", "udp"]).toContain(t);
    }
  });

  test("process and client names are lowercase, as identification lowercases comm", () => {
    for (const s of SERVICES) for (const name of [...(s.processes ?? []), ...(s.clients ?? [])]) expect(name).toBe(name.toLowerCase());
  });

  test("a port is listed twice on one transport only where SHARED_PORTS documents it", () => {
    const owners = new Map<string, string[]>();
    for (const s of SERVICES) for (const t of s.transports) for (const p of s.ports) owners.set(key(t, p), [...(owners.get(key(t, p)) ?? []), s.name]);
    const shared = Object.fromEntries([...owners].filter(([, names]) => names.length > 1).map(([k, names]) => [k, [...names].sort()]));
    const documented = Object.fromEntries(Object.entries(SHARED_PORTS).map(([k, v]) => [k, [...v.services].sort()]));
    expect(shared).toEqual(documented);
    for (const [k, v] of Object.entries(SHARED_PORTS)) {
      expect(v.services).toContain(v.default);
      expect(v.why.length).toBeGreaterThan(0);
      const [t, p] = k.split("/") as [Transport, string];
      expect(servicesForPort(t, Number(p))[0]!.name).toBe(v.default);
    }
  });

  test("ports in the ephemeral range are only the documented exceptions", () => {
    const high = SERVICES.flatMap((s) => s.transports.flatMap((t) => s.ports.filter((p) => p >= EPHEMERAL_PORT_MIN).map((p) => key(t, p))));
    expect(high.sort()).toEqual([...EPHEMERAL_RANGE_SERVICE_PORTS].sort());
  });

  const required: [Transport, number, string][] = [
    ["tcp", 22, "ssh"], ["tcp", 80, "http"], ["tcp", 443, "https"], ["tcp", 8080, "http-alt"], ["udp", 53, "dns"], ["tcp", 53, "dns"],
    ["udp", 67, "dhcp"], ["tcp", 5432, "postgresql"], ["tcp", 3306, "mysql"], ["tcp", 6379, "redis"], ["tcp", 27017, "mongodb"],
    ["tcp", 9092, "kafka"], ["tcp", 2181, "zookeeper"], ["tcp", 2379, "etcd"], ["tcp", 2380, "etcd"], ["tcp", 6443, "kubernetes-api"],
    ["tcp", 10250, "kubelet"], ["tcp", 389, "ldap"], ["tcp", 636, "ldaps"], ["tcp", 25, "smtp"], ["tcp", 587, "submission"],
    ["tcp", 465, "smtps"], ["tcp", 143, "imap"], ["tcp", 993, "imaps"], ["tcp", 110, "pop3"], ["tcp", 995, "pop3s"],
    ["tcp", 2049, "nfs"], ["tcp", 111, "rpcbind"], ["udp", 123, "ntp"], ["udp", 323, "chrony-cmd"], ["udp", 161, "snmp"],
    ["udp", 162, "snmp-trap"], ["udp", 514, "syslog"], ["tcp", 6514, "syslog-tls"], ["tcp", 2514, "relp"], ["tcp", 19532, "journal-remote"],
    ["tcp", 9090, "prometheus"], ["tcp", 9100, "node-exporter"], ["tcp", 9093, "alertmanager"], ["tcp", 3000, "grafana"],
    ["tcp", 9200, "elasticsearch"], ["tcp", 9300, "elasticsearch"], ["tcp", 5601, "kibana"], ["tcp", 5044, "logstash-beats"],
    ["tcp", 5672, "amqp"], ["tcp", 15672, "rabbitmq-management"], ["tcp", 25672, "rabbitmq-dist"], ["tcp", 11211, "memcached"],
    ["tcp", 9090, "cockpit"], ["tcp", 8500, "consul"], ["tcp", 8200, "vault"], ["tcp", 4646, "nomad"], ["tcp", 2375, "docker"],
    ["tcp", 2376, "docker"], ["tcp", 445, "smb"], ["tcp", 139, "netbios-ssn"], ["udp", 137, "netbios-ns"], ["udp", 138, "netbios-dgm"],
    ["udp", 88, "kerberos"], ["tcp", 3128, "squid"], ["tcp", 6081, "varnish"], ["tcp", 8404, "haproxy-stats"], ["tcp", 10050, "zabbix-agent"],
    ["tcp", 10051, "zabbix-server"], ["tcp", 5666, "nrpe"], ["tcp", 8140, "puppet"], ["tcp", 4505, "salt"], ["tcp", 4506, "salt"],
    ["tcp", 9418, "git"], ["tcp", 873, "rsync"], ["tcp", 21, "ftp"], ["udp", 69, "tftp"], ["tcp", 23, "telnet"], ["tcp", 5900, "vnc"],
    ["tcp", 3389, "rdp"], ["tcp", 6000, "x11"], ["tcp", 631, "ipp"], ["udp", 5353, "mdns"], ["udp", 5355, "llmnr"],
    ["udp", 51820, "wireguard"], ["udp", 1194, "openvpn"], ["udp", 500, "ike"], ["udp", 4500, "ike"], ["tcp", 179, "bgp"],
    ["tcp", 9042, "cassandra"], ["tcp", 7000, "cassandra"], ["tcp", 5984, "couchdb"], ["tcp", 8086, "influxdb"], ["tcp", 8123, "clickhouse"],
    ["tcp", 9000, "clickhouse"], ["tcp", 4222, "nats"], ["tcp", 1883, "mqtt"], ["tcp", 8883, "mqtt"], ["tcp", 8080, "jenkins"],
    ["tcp", 8009, "ajp"], ["tcp", 1521, "oracle"], ["tcp", 1433, "mssql"], ["tcp", 7474, "neo4j"], ["tcp", 7687, "neo4j"],
    ["tcp", 8983, "solr"], ["tcp", 8020, "hdfs"], ["tcp", 7077, "spark"], ["tcp", 6789, "ceph-mon"], ["tcp", 3300, "ceph-mon"],
    ["tcp", 24007, "glusterfs"], ["tcp", 3260, "iscsi"], ["udp", 5405, "corosync"], ["tcp", 6566, "sane"],
  ];
  test("covers the services the issue names", () => {
    const missing = required.filter(([t, p, name]) => !servicesForPort(t, p).some((s) => s.name === name)).map(([t, p, name]) => `${name} ${t}/${p}`);
    expect(missing).toEqual([]);
  });
});
