// Application-protocol guesses for the sockets of a snapshot. Pure: no I/O. The caller says which
// ports listen on this host (same network namespace) and which process owns the socket; this file
// decides which end is the service, names the protocol, and says why and how sure it is.
//
// Order of the rules (the first that applies wins):
//   1. listening-port: the local port listens on this host. Covers the LISTEN socket itself and the
//      sockets accept() returned, whatever their state (ESTAB, CLOSE-WAIT, ...). A client that bound
//      its source port to a listening port (SO_REUSEADDR, ntpd 123→123, BGP 179) is counted as the
//      service too: both ends speak the same protocol there, so the guess is still right.
//   2. well-known-remote-port: the remote port is a service's port: an outbound connection.
//      A client that connects *from* a well-known port (NFS clients use ports below 1024, e.g.
//      local 665 → remote 2049) still lands here, because the remote end is checked first.
//   3. well-known-local-port: the local port is a service's port but nothing listens on it. Normal for
//      UDP servers (UNCONN on 53, 123, 514: UDP has no LISTEN). For TCP it means the listener is gone
//      (service restarted, old connections linger) or lives in another network namespace; such a
//      guess is lowered one confidence level. The edge "a client connecting from local port 443 to
//      remote 50000" is this case: HTTPS, one level lower, with the reason saying nothing listens.
// A port at or above 32768 (Linux's default ip_local_port_range starts there) that is not listening
// is never the service, unless the table lists it (WireGuard's 51820/udp only; see
// EPHEMERAL_RANGE_SERVICE_PORTS), and then only with low confidence.
//
// Confidence policy:
//   high   the port matches and the process is one the service runs as (sshd on 22, postgres on 5432);
//          for an outbound connection, the local process is a known client of it (psql → 5432).
//   medium the port matches one service but the process is unknown or another one (java on 5432,
//          docker-proxy on 6379), or the connection is outbound with an unknown client: the server
//          process is on another host, so it cannot confirm.
//   low    only the process name suggests it (postgres listening on 6000 → postgresql); a port shared
//          by several services that no process name decides (9090 without cockpit-ws or prometheus);
//          a generic web port (8080, 8000, 8888, 8443, ...: "http-alt"/"https-alt") whose process is
//          not a known web server; a table port in the ephemeral range that is not listening.
// Process names: a dedicated server's name beats the port (postgres listening on 6000 is PostgreSQL,
// low, not X11); a proxy's, forwarder's or launcher's does not (haproxy, nginx, docker-proxy, sshd,
// systemd on 5432 still mean PostgreSQL: they hold ports for others); a runtime's (java, node,
// beam.smp, python3) never names a service on its own, but counts where a table entry lists it
// (java on 9092 is Kafka, high). Where services share a port (SHARED_PORTS: 9090 Prometheus/Cockpit,
// 9000 PHP-FPM/ClickHouse/MinIO, ...), the process (or, outbound, the client) picks one; without it
// the documented default is guessed, low, with the alternatives in the reason. The remote rule uses
// each service's `clients`, since the local process of an outbound connection is the client.
// Raw sockets carry an IP protocol, not ports: always unknown here.
// Process names are comm values (at most 15 characters, so "systemd-resolved" reads
// "systemd-resolve"); a name that fills all 15 matches a longer known name it begins with, and a
// version suffix is ignored ("php-fpm8.2" is "php-fpm").

export type Confidence = "high" | "medium" | "low";
type Transport = "tcp" | "udp";

export interface Service {
  /** Lowercase, unique; what ProtocolGuess.protocol says. */
  name: string;
  /** How a person writes it, for reasons: "PostgreSQL". */
  title: string;
  ports: number[];
  /** Every port is listed on every transport given; see each description for which really is. */
  transports: Transport[];
  /** comm names of the server processes. */
  processes?: string[];
  /** comm names of typical clients: they decide outbound connections. */
  clients?: string[];
  description: string;
}

export interface ProtocolGuess {
  /** A Service name ("ssh", "https", "postgresql"), a Unix-socket protocol, or "unknown". */
  protocol: string;
  /** The port that identified it (also set for an unknown protocol on a listening port). */
  service_port: number | null;
  /** Which end is the service (also set for an unknown protocol on a listening port); null for Unix sockets. */
  service_side: "local" | "remote" | null;
  rule: "listening-port" | "well-known-remote-port" | "well-known-local-port" | "unix-path" | "none";
  confidence: Confidence;
  /** One sentence a person understands. */
  reason: string;
}

/** Linux's default ip_local_port_range is 32768–60999: ports from there up are handed to clients. */
export const EPHEMERAL_PORT_MIN = 32768;

/** Table ports in the ephemeral range, kept because their service is common; see the file header. */
export const EPHEMERAL_RANGE_SERVICE_PORTS: readonly string[] = ["udp/51820"];

const WEB_SERVERS = ["nginx", "httpd", "apache2", "caddy", "haproxy", "envoy", "traefik", "lighttpd", "h2o", "varnishd"];
const APP_SERVERS = ["gunicorn", "uvicorn", "puma", "unicorn", "uwsgi", "hypercorn", "waitress-serve"];
const HTTP_CLIENTS = ["curl", "wget", "dnf", "yum", "apt", "apt-get", "http", "packagekitd", "rhsmcertd", "subscription-ma", "insights-clien"];
const RANGE = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

// Grouped by field; table order only matters for a process-only guess (the first service a process
// name appears in wins: nginx → http, mysqld → mysql).
export const SERVICES: readonly Service[] = [
  // Remote access and file transfer
  { name: "ssh", title: "SSH", ports: [22], transports: ["tcp"], processes: ["sshd", "sshd-session", "sshd-auth", "dropbear"], clients: ["ssh", "scp", "sftp", "rsync", "git", "ansible", "sshfs"], description: "Secure Shell (also scp, sftp and port forwarding)" },
  { name: "telnet", title: "Telnet", ports: [23], transports: ["tcp"], processes: ["telnetd", "in.telnetd"], clients: ["telnet"], description: "Telnet remote terminal (cleartext)" },
  { name: "ftp", title: "FTP", ports: [21], transports: ["tcp"], processes: ["vsftpd", "proftpd", "pure-ftpd"], clients: ["ftp", "lftp", "curl"], description: "File Transfer Protocol, control channel" },
  { name: "ftp-data", title: "FTP data", ports: [20], transports: ["tcp"], processes: ["vsftpd", "proftpd", "pure-ftpd"], description: "FTP active-mode data channel" },
  { name: "ftps", title: "FTPS", ports: [990], transports: ["tcp"], processes: ["vsftpd", "proftpd", "pure-ftpd"], clients: ["lftp", "curl"], description: "FTP over implicit TLS" },
  { name: "tftp", title: "TFTP", ports: [69], transports: ["udp"], processes: ["in.tftpd", "tftpd", "dnsmasq"], clients: ["tftp"], description: "Trivial File Transfer Protocol (PXE boot)" },
  { name: "rsync", title: "rsync", ports: [873], transports: ["tcp"], processes: ["rsync"], clients: ["rsync"], description: "rsync daemon protocol" },
  { name: "git", title: "Git", ports: [9418], transports: ["tcp"], processes: ["git-daemon", "git"], clients: ["git"], description: "Git native protocol (git://)" },
  { name: "svn", title: "Subversion", ports: [3690], transports: ["tcp"], processes: ["svnserve"], clients: ["svn"], description: "Subversion svnserve protocol (svn://)" },
  { name: "vnc", title: "VNC", ports: RANGE(5900, 5909), transports: ["tcp"], processes: ["xvnc", "vncserver", "x0vncserver", "qemu-kvm", "qemu-system-x86", "wayvnc"], clients: ["vncviewer", "remote-viewer"], description: "VNC remote framebuffer (RFB), displays :0 to :9" },
  { name: "rdp", title: "RDP", ports: [3389], transports: ["tcp", "udp"], processes: ["xrdp", "gnome-remote-de"], clients: ["xfreerdp", "remmina"], description: "Remote Desktop Protocol (xrdp, GNOME Remote Desktop)" },
  { name: "x11", title: "X11", ports: RANGE(6000, 6009), transports: ["tcp"], processes: ["xorg", "x", "xwayland", "xvfb", "xvnc"], description: "X Window System over TCP, displays :0 to :9" },
  { name: "socks", title: "SOCKS", ports: [1080], transports: ["tcp"], processes: ["sockd", "danted", "microsocks"], description: "SOCKS proxy (dante, ssh -D)" },
  // Web and proxies
  { name: "http", title: "HTTP", ports: [80], transports: ["tcp"], processes: WEB_SERVERS, clients: HTTP_CLIENTS, description: "HTTP" },
  { name: "https", title: "HTTPS", ports: [443], transports: ["tcp", "udp"], processes: WEB_SERVERS, clients: HTTP_CLIENTS, description: "HTTP over TLS on tcp; HTTP/3 over QUIC on udp" },
  { name: "http-alt", title: "HTTP-alt", ports: [8000, 8008, 8080, 8081, 8888, 3000, 5000], transports: ["tcp"], processes: [...WEB_SERVERS, ...APP_SERVERS], clients: HTTP_CLIENTS, description: "common alternative HTTP ports of app servers, proxies and dev servers; any web application may use them" },
  { name: "https-alt", title: "HTTPS-alt", ports: [8443, 4443], transports: ["tcp"], processes: WEB_SERVERS, clients: HTTP_CLIENTS, description: "common alternative HTTPS ports; any web application may use them" },
  { name: "squid", title: "Squid", ports: [3128], transports: ["tcp"], processes: ["squid"], description: "Squid HTTP forward proxy" },
  { name: "varnish", title: "Varnish", ports: [6081, 6082], transports: ["tcp"], processes: ["varnishd", "cache-main"], description: "Varnish HTTP cache (6081) and its admin CLI (6082)" },
  { name: "haproxy-stats", title: "HAProxy stats", ports: [8404], transports: ["tcp"], processes: ["haproxy"], description: "HAProxy statistics page and Prometheus endpoint (the port HAProxy's docs use)" },
  { name: "ajp", title: "AJP", ports: [8009], transports: ["tcp"], processes: ["java"], clients: ["httpd", "apache2"], description: "Apache JServ Protocol (Tomcat connector behind httpd)" },
  { name: "fastcgi", title: "FastCGI (PHP-FPM)", ports: [9000], transports: ["tcp"], processes: ["php-fpm", "php-cgi"], clients: ["nginx", "httpd", "apache2", "caddy"], description: "FastCGI, usually PHP-FPM behind a web server" },
  { name: "jenkins", title: "Jenkins", ports: [8080], transports: ["tcp"], processes: ["jenkins"], description: "Jenkins web UI (its JVM usually shows as java)" },
  { name: "webmin", title: "Webmin", ports: [10000], transports: ["tcp"], processes: ["miniserv.pl"], description: "Webmin administration web UI" },
  { name: "cockpit", title: "Cockpit", ports: [9090], transports: ["tcp"], processes: ["cockpit-ws", "cockpit-tls", "systemd"], description: "Cockpit web console; socket-activated, so systemd itself holds the port until cockpit-ws starts" },
  // Name resolution, addressing, time
  { name: "dns", title: "DNS", ports: [53], transports: ["tcp", "udp"], processes: ["named", "dnsmasq", "unbound", "systemd-resolve", "coredns", "pdns_server", "pdns_recursor", "knotd", "nsd", "bind"], clients: ["systemd-resolve", "dnsmasq", "unbound", "named", "nscd", "sssd_be", "dig", "nslookup", "host"], description: "Domain Name System" },
  { name: "dns-over-tls", title: "DNS over TLS", ports: [853], transports: ["tcp"], processes: ["unbound", "named", "knot-resolver", "kresd"], clients: ["systemd-resolve", "unbound", "stubby"], description: "DNS over TLS (RFC 7858)" },
  { name: "mdns", title: "mDNS", ports: [5353], transports: ["udp"], processes: ["avahi-daemon", "systemd-resolve"], description: "multicast DNS / DNS-SD (Avahi, systemd-resolved)" },
  { name: "llmnr", title: "LLMNR", ports: [5355], transports: ["tcp", "udp"], processes: ["systemd-resolve"], description: "Link-Local Multicast Name Resolution (systemd-resolved)" },
  { name: "dhcp", title: "DHCP", ports: [67, 68], transports: ["udp"], processes: ["dhcpd", "kea-dhcp4", "dnsmasq", "dhclient", "networkmanager", "systemd-network", "dhcpcd", "udhcpc"], description: "DHCPv4: servers on 67, clients on 68" },
  { name: "dhcpv6", title: "DHCPv6", ports: [546, 547], transports: ["udp"], processes: ["dhcpd", "kea-dhcp6", "dnsmasq", "dhclient", "networkmanager", "systemd-network", "dhcpcd"], description: "DHCPv6: clients on 546, servers on 547" },
  { name: "ntp", title: "NTP", ports: [123], transports: ["udp"], processes: ["chronyd", "ntpd", "systemd-timesyn", "openntpd"], clients: ["chronyd", "ntpd", "systemd-timesyn", "ntpdate", "sntp"], description: "Network Time Protocol" },
  { name: "nts-ke", title: "NTS-KE", ports: [4460], transports: ["tcp"], processes: ["chronyd", "ntpd-rs"], clients: ["chronyd"], description: "Network Time Security key establishment (RFC 8915)" },
  { name: "chrony-cmd", title: "chrony command port", ports: [323], transports: ["udp"], processes: ["chronyd"], clients: ["chronyc"], description: "chronyd's command port for chronyc (localhost only by default)" },
  // Directory and authentication
  { name: "ldap", title: "LDAP", ports: [389], transports: ["tcp"], processes: ["slapd", "ns-slapd"], clients: ["sssd_be", "nslcd", "ldapsearch", "slapd", "ns-slapd"], description: "LDAP (OpenLDAP slapd, 389-ds ns-slapd in FreeIPA)" },
  { name: "ldaps", title: "LDAPS", ports: [636], transports: ["tcp"], processes: ["slapd", "ns-slapd"], clients: ["sssd_be", "nslcd", "ldapsearch", "slapd", "ns-slapd"], description: "LDAP over TLS" },
  { name: "ldap-gc", title: "LDAP global catalog", ports: [3268, 3269], transports: ["tcp"], processes: ["samba"], clients: ["sssd_be", "ldapsearch"], description: "Active Directory global catalog (3269 over TLS)" },
  { name: "kerberos", title: "Kerberos", ports: [88], transports: ["tcp", "udp"], processes: ["krb5kdc", "kdc", "samba"], clients: ["sssd_be", "krb5_child", "kinit", "ldap_child"], description: "Kerberos KDC (MIT krb5kdc, FreeIPA, Samba AD)" },
  { name: "kpasswd", title: "kpasswd", ports: [464], transports: ["tcp", "udp"], processes: ["kadmind", "kpasswd", "samba"], clients: ["kpasswd", "krb5_child"], description: "Kerberos password changes" },
  { name: "kadmin", title: "kadmin", ports: [749], transports: ["tcp"], processes: ["kadmind"], clients: ["kadmin"], description: "Kerberos administration" },
  { name: "radius", title: "RADIUS", ports: [1812, 1813], transports: ["udp"], processes: ["radiusd", "freeradius"], description: "RADIUS authentication (1812) and accounting (1813)" },
  // Mail
  { name: "smtp", title: "SMTP", ports: [25], transports: ["tcp"], processes: ["master", "smtpd", "sendmail", "exim", "exim4", "postfix"], clients: ["smtp", "sendmail", "exim", "exim4", "msmtp", "ssmtp"], description: "SMTP mail transfer (postfix's listener shows as master)" },
  { name: "submission", title: "mail submission", ports: [587], transports: ["tcp"], processes: ["master", "smtpd", "sendmail", "exim", "exim4"], clients: ["smtp", "msmtp", "ssmtp", "sendmail"], description: "SMTP message submission with STARTTLS" },
  { name: "smtps", title: "SMTPS", ports: [465], transports: ["tcp"], processes: ["master", "smtpd", "sendmail", "exim", "exim4"], clients: ["smtp", "msmtp", "ssmtp"], description: "SMTP submission over implicit TLS" },
  { name: "lmtp", title: "LMTP", ports: [24], transports: ["tcp"], processes: ["dovecot", "lmtp", "cyrus-master"], clients: ["lmtp", "smtp"], description: "Local Mail Transfer Protocol (MTA to mailbox store)" },
  { name: "imap", title: "IMAP", ports: [143], transports: ["tcp"], processes: ["dovecot", "imap-login", "imap", "cyrus-master"], clients: ["fetchmail", "mbsync", "offlineimap"], description: "IMAP mailbox access" },
  { name: "imaps", title: "IMAPS", ports: [993], transports: ["tcp"], processes: ["dovecot", "imap-login", "imap", "cyrus-master"], clients: ["fetchmail", "mbsync", "offlineimap"], description: "IMAP over TLS" },
  { name: "pop3", title: "POP3", ports: [110], transports: ["tcp"], processes: ["dovecot", "pop3-login", "pop3"], clients: ["fetchmail"], description: "POP3 mailbox access" },
  { name: "pop3s", title: "POP3S", ports: [995], transports: ["tcp"], processes: ["dovecot", "pop3-login", "pop3"], clients: ["fetchmail"], description: "POP3 over TLS" },
  { name: "sieve", title: "ManageSieve", ports: [4190], transports: ["tcp"], processes: ["dovecot", "managesieve-log"], description: "ManageSieve mail filter management" },
  // File sharing and storage
  { name: "nfs", title: "NFS", ports: [2049], transports: ["tcp", "udp"], processes: ["nfsd"], description: "Network File System (the server is in the kernel: no process owns its socket)" },
  { name: "nfs-mountd", title: "NFS mountd", ports: [20048], transports: ["tcp", "udp"], processes: ["rpc.mountd"], description: "NFSv3 mount daemon (fixed port on RHEL)" },
  { name: "rpcbind", title: "rpcbind", ports: [111], transports: ["tcp", "udp"], processes: ["rpcbind", "portmap"], clients: ["rpc.statd", "mount.nfs", "rpcinfo", "rpc.mountd", "ypbind"], description: "ONC RPC port mapper (sunrpc)" },
  { name: "smb", title: "SMB", ports: [445], transports: ["tcp"], processes: ["smbd", "samba", "ksmbd"], clients: ["smbclient", "cifsd", "mount.cifs"], description: "SMB/CIFS file sharing over TCP (Samba)" },
  { name: "netbios-ssn", title: "NetBIOS session", ports: [139], transports: ["tcp"], processes: ["smbd", "samba"], clients: ["smbclient"], description: "SMB over NetBIOS sessions (Samba)" },
  { name: "netbios-ns", title: "NetBIOS name service", ports: [137], transports: ["udp"], processes: ["nmbd", "samba"], description: "NetBIOS name service (Samba nmbd)" },
  { name: "netbios-dgm", title: "NetBIOS datagram", ports: [138], transports: ["udp"], processes: ["nmbd", "samba"], description: "NetBIOS datagram service (Samba nmbd)" },
  { name: "iscsi", title: "iSCSI", ports: [3260], transports: ["tcp"], processes: ["tgtd", "iscsi-target", "target"], clients: ["iscsid"], description: "iSCSI block storage (the LIO target lives in the kernel)" },
  { name: "ceph-mon", title: "Ceph monitor", ports: [3300, 6789], transports: ["tcp"], processes: ["ceph-mon"], clients: ["ceph-osd", "ceph-mgr", "ceph-mds", "ceph", "rbd", "ceph-fuse", "radosgw"], description: "Ceph monitor (msgr2 on 3300, legacy msgr1 on 6789)" },
  { name: "glusterfs", title: "GlusterFS", ports: [24007, 24008], transports: ["tcp"], processes: ["glusterd"], clients: ["glusterfs", "glusterfsd", "gluster"], description: "GlusterFS management daemon (bricks use 49152 and up)" },
  { name: "hdfs", title: "HDFS", ports: [8020, 9820, 9864, 9865, 9866, 9867, 9870, 9871], transports: ["tcp"], processes: ["java"], description: "Hadoop HDFS: NameNode RPC 8020/9820 and web 9870/9871, DataNode 9864-9867" },
  { name: "yarn", title: "Hadoop YARN", ports: [8030, 8031, 8032, 8033, 8042, 8088], transports: ["tcp"], processes: ["java"], description: "Hadoop YARN ResourceManager (8030-8033, web 8088) and NodeManager web (8042)" },
  { name: "minio", title: "MinIO", ports: [9000, 9001], transports: ["tcp"], processes: ["minio"], clients: ["mc", "rclone"], description: "MinIO S3-compatible object storage API (9000) and console (9001)" },
  // Databases and caches
  { name: "postgresql", title: "PostgreSQL", ports: [5432], transports: ["tcp"], processes: ["postgres", "postmaster"], clients: ["psql", "pg_dump", "pg_dumpall", "pg_restore", "pg_basebackup", "pg_receivewal", "pgbouncer", "pgpool", "postgres", "patroni"], description: "PostgreSQL database" },
  { name: "pgbouncer", title: "PgBouncer", ports: [6432], transports: ["tcp"], processes: ["pgbouncer"], clients: ["psql"], description: "PgBouncer connection pooler (speaks the PostgreSQL protocol)" },
  { name: "mysql", title: "MySQL/MariaDB", ports: [3306], transports: ["tcp"], processes: ["mysqld", "mariadbd", "mysqld-safe"], clients: ["mysql", "mysqldump", "mariadb", "mariadb-dump", "mysqld", "mariadbd", "proxysql", "maxscale"], description: "MySQL and MariaDB databases" },
  { name: "galera", title: "Galera", ports: [4444, 4567, 4568], transports: ["tcp"], processes: ["mysqld", "mariadbd"], clients: ["mysqld", "mariadbd"], description: "Galera cluster replication (4567), IST (4568) and SST (4444) for MariaDB/MySQL" },
  { name: "mssql", title: "Microsoft SQL Server", ports: [1433], transports: ["tcp"], processes: ["sqlservr"], clients: ["sqlcmd", "bcp"], description: "Microsoft SQL Server (TDS)" },
  { name: "mssql-browser", title: "SQL Server Browser", ports: [1434], transports: ["udp"], processes: ["sqlservr"], description: "SQL Server Browser service" },
  { name: "oracle", title: "Oracle Database", ports: [1521], transports: ["tcp"], processes: ["tnslsnr"], clients: ["sqlplus", "rman", "expdp", "impdp"], description: "Oracle Net listener (accepted connections pass to oracleSID processes)" },
  { name: "mongodb", title: "MongoDB", ports: [27017, 27018, 27019], transports: ["tcp"], processes: ["mongod", "mongos"], clients: ["mongosh", "mongo", "mongod", "mongos", "mongodump", "mongorestore"], description: "MongoDB (27017 mongod/mongos, 27018 shard, 27019 config server)" },
  { name: "redis", title: "Redis", ports: [6379], transports: ["tcp"], processes: ["redis-server", "valkey-server", "keydb-server"], clients: ["redis-cli", "valkey-cli", "redis-server", "valkey-server", "redis-sentinel"], description: "Redis and Valkey" },
  { name: "redis-sentinel", title: "Redis Sentinel", ports: [26379], transports: ["tcp"], processes: ["redis-sentinel", "redis-server", "valkey-sentinel"], clients: ["redis-sentinel", "redis-cli"], description: "Redis Sentinel high availability" },
  { name: "redis-cluster", title: "Redis cluster bus", ports: [16379], transports: ["tcp"], processes: ["redis-server", "valkey-server"], clients: ["redis-server", "valkey-server"], description: "Redis Cluster node-to-node bus" },
  { name: "memcached", title: "memcached", ports: [11211], transports: ["tcp", "udp"], processes: ["memcached"], description: "memcached" },
  { name: "cassandra", title: "Cassandra", ports: [7000, 7001, 7199, 9042], transports: ["tcp"], processes: ["java"], clients: ["cqlsh", "nodetool"], description: "Apache Cassandra: CQL 9042, inter-node 7000/7001 (TLS), JMX 7199" },
  { name: "couchdb", title: "CouchDB", ports: [5984], transports: ["tcp"], processes: ["beam.smp", "couchdb"], description: "Apache CouchDB HTTP API" },
  { name: "influxdb", title: "InfluxDB", ports: [8086], transports: ["tcp"], processes: ["influxd"], clients: ["telegraf", "influx", "grafana"], description: "InfluxDB HTTP API" },
  { name: "clickhouse", title: "ClickHouse", ports: [8123, 9000, 9009, 9440], transports: ["tcp"], processes: ["clickhouse-serv", "clickhouse"], clients: ["clickhouse-clie", "clickhouse"], description: "ClickHouse: HTTP 8123, native 9000 (9440 with TLS), inter-server 9009" },
  { name: "neo4j", title: "Neo4j", ports: [7473, 7474, 7687], transports: ["tcp"], processes: ["java"], clients: ["cypher-shell"], description: "Neo4j: Bolt 7687, HTTP 7474, HTTPS 7473" },
  { name: "solr", title: "Solr", ports: [8983], transports: ["tcp"], processes: ["java"], description: "Apache Solr" },
  { name: "elasticsearch", title: "Elasticsearch", ports: [9200, 9300], transports: ["tcp"], processes: ["java"], clients: ["filebeat", "metricbeat", "auditbeat", "kibana", "node", "fluent-bit", "vector", "logstash", "curl"], description: "Elasticsearch/OpenSearch: REST 9200, transport 9300" },
  { name: "kibana", title: "Kibana", ports: [5601], transports: ["tcp"], processes: ["node", "kibana"], description: "Kibana/OpenSearch Dashboards web UI" },
  // Messaging and coordination
  { name: "amqp", title: "AMQP", ports: [5671, 5672], transports: ["tcp"], processes: ["beam.smp", "qpidd", "java"], description: "AMQP (RabbitMQ, Qpid, ActiveMQ Artemis); 5671 is AMQP over TLS" },
  { name: "rabbitmq-management", title: "RabbitMQ management", ports: [15672], transports: ["tcp"], processes: ["beam.smp"], description: "RabbitMQ management web UI and HTTP API" },
  { name: "rabbitmq-dist", title: "RabbitMQ distribution", ports: [25672], transports: ["tcp"], processes: ["beam.smp"], clients: ["beam.smp"], description: "Erlang distribution between RabbitMQ nodes and CLI tools" },
  { name: "epmd", title: "Erlang port mapper", ports: [4369], transports: ["tcp"], processes: ["epmd"], clients: ["beam.smp"], description: "Erlang Port Mapper Daemon (RabbitMQ, CouchDB, ejabberd)" },
  { name: "kafka", title: "Kafka", ports: [9092, 9093], transports: ["tcp"], processes: ["java"], clients: ["kcat", "kafkacat"], description: "Apache Kafka brokers (9093 is often the TLS listener)" },
  { name: "zookeeper", title: "ZooKeeper", ports: [2181, 2888, 3888], transports: ["tcp"], processes: ["java"], description: "Apache ZooKeeper: clients 2181, followers 2888, leader election 3888" },
  { name: "nats", title: "NATS", ports: [4222, 6222, 8222], transports: ["tcp"], processes: ["nats-server", "gnatsd"], clients: ["nats"], description: "NATS: clients 4222, cluster 6222, monitoring 8222" },
  { name: "mqtt", title: "MQTT", ports: [1883, 8883], transports: ["tcp"], processes: ["mosquitto", "vernemq", "beam.smp", "emqx"], clients: ["mosquitto_sub", "mosquitto_pub", "mosquitto"], description: "MQTT brokers such as Mosquitto (8883 is MQTT over TLS)" },
  { name: "xmpp", title: "XMPP", ports: [5222, 5269], transports: ["tcp"], processes: ["prosody", "lua", "beam.smp", "ejabberd"], description: "XMPP client (5222) and server-to-server (5269)" },
  { name: "sip", title: "SIP", ports: [5060, 5061], transports: ["tcp", "udp"], processes: ["asterisk", "kamailio", "opensips", "freeswitch"], description: "Session Initiation Protocol (5061 over TLS)" },
  { name: "irc", title: "IRC", ports: [6667, 6697], transports: ["tcp"], processes: ["ircd", "inspircd", "unrealircd", "ngircd"], clients: ["irssi", "weechat", "znc"], description: "Internet Relay Chat (6697 over TLS)" },
  // Containers, orchestration, service discovery
  { name: "docker", title: "Docker API", ports: [2375, 2376], transports: ["tcp"], processes: ["dockerd"], clients: ["docker"], description: "Docker Engine API over TCP (2376 with TLS; 2375 is unauthenticated)" },
  { name: "docker-swarm", title: "Docker Swarm", ports: [2377], transports: ["tcp"], processes: ["dockerd"], clients: ["dockerd"], description: "Docker Swarm cluster management" },
  { name: "memberlist", title: "memberlist gossip", ports: [7946], transports: ["tcp", "udp"], processes: ["dockerd", "loki", "mimir", "tempo", "cortex"], clients: ["dockerd", "loki", "mimir", "tempo"], description: "HashiCorp memberlist gossip (Docker Swarm, Loki, Mimir, Tempo)" },
  { name: "docker-registry", title: "Docker registry", ports: [5000], transports: ["tcp"], processes: ["registry", "distribution"], clients: ["dockerd", "containerd", "podman", "skopeo", "buildah"], description: "container image registry (distribution)" },
  { name: "vxlan", title: "VXLAN", ports: [4789, 8472], transports: ["udp"], description: "VXLAN overlay (kernel; 8472 is Linux's and flannel's default)" },
  { name: "geneve", title: "Geneve", ports: [6081], transports: ["udp"], description: "Geneve overlay (kernel; OVN, Cilium)" },
  { name: "kubernetes-api", title: "Kubernetes API", ports: [6443], transports: ["tcp"], processes: ["kube-apiserver", "k3s-server", "k3s"], clients: ["kubelet", "kubectl", "kube-proxy", "kube-scheduler", "kube-controller", "coredns", "calico-node", "cilium-agent", "flanneld", "helm", "k9s", "containerd-shim"], description: "Kubernetes API server" },
  { name: "kubelet", title: "kubelet", ports: [10250, 10255], transports: ["tcp"], processes: ["kubelet", "k3s-server", "k3s-agent", "k3s"], clients: ["kube-apiserver", "prometheus", "metrics-server"], description: "kubelet API (10250) and its read-only port (10255)" },
  { name: "kube-proxy", title: "kube-proxy", ports: [10249, 10256], transports: ["tcp"], processes: ["kube-proxy"], description: "kube-proxy metrics (10249) and health (10256)" },
  { name: "kube-controller-manager", title: "kube-controller-manager", ports: [10257], transports: ["tcp"], processes: ["kube-controller"], description: "kube-controller-manager secure port" },
  { name: "kube-scheduler", title: "kube-scheduler", ports: [10259], transports: ["tcp"], processes: ["kube-scheduler"], description: "kube-scheduler secure port" },
  { name: "etcd", title: "etcd", ports: [2379, 2380], transports: ["tcp"], processes: ["etcd"], clients: ["kube-apiserver", "etcdctl", "etcd", "calico-node", "patroni", "flanneld"], description: "etcd: clients 2379, peers 2380" },
  { name: "consul", title: "Consul", ports: [8300, 8301, 8302, 8500, 8501, 8502, 8503, 8600], transports: ["tcp", "udp"], processes: ["consul"], clients: ["consul", "nomad", "vault", "envoy"], description: "Consul: RPC 8300, Serf 8301/8302 (tcp+udp), HTTP 8500, HTTPS 8501, gRPC 8502/8503, DNS 8600 (tcp+udp)" },
  { name: "vault", title: "Vault", ports: [8200, 8201], transports: ["tcp"], processes: ["vault", "bao"], clients: ["vault", "vault-agent"], description: "HashiCorp Vault / OpenBao API (8200) and cluster (8201)" },
  { name: "nomad", title: "Nomad", ports: [4646, 4647, 4648], transports: ["tcp"], processes: ["nomad"], clients: ["nomad"], description: "HashiCorp Nomad: HTTP 4646, RPC 4647, Serf 4648" },
  { name: "libvirt", title: "libvirt", ports: [16509, 16514], transports: ["tcp"], processes: ["libvirtd", "virtproxyd"], clients: ["virsh", "virt-manager", "libvirtd"], description: "libvirt remote API (16514 with TLS)" },
  { name: "spark", title: "Spark", ports: [7077, 4040, 18080], transports: ["tcp"], processes: ["java"], description: "Apache Spark: master 7077, application UI 4040, history server 18080" },
  // Monitoring, logging, management
  { name: "syslog", title: "syslog", ports: [514], transports: ["udp", "tcp"], processes: ["rsyslogd", "syslog-ng", "syslogd"], clients: ["rsyslogd", "syslog-ng", "logger"], description: "syslog (udp 514; plain tcp 514 as rsyslog and syslog-ng use it)" },
  { name: "syslog-tls", title: "syslog over TLS", ports: [6514], transports: ["tcp"], processes: ["rsyslogd", "syslog-ng"], clients: ["rsyslogd", "syslog-ng"], description: "syslog over TLS (RFC 5425)" },
  { name: "relp", title: "RELP", ports: [2514, 20514], transports: ["tcp"], processes: ["rsyslogd"], clients: ["rsyslogd"], description: "Reliable Event Logging Protocol (rsyslog imrelp; no registered port, these two are the usual)" },
  { name: "journal-remote", title: "systemd-journal-remote", ports: [19532], transports: ["tcp"], processes: ["systemd-journal", "systemd"], clients: ["systemd-journal"], description: "systemd-journal-remote receiving from systemd-journal-upload" },
  { name: "journal-gatewayd", title: "systemd-journal-gatewayd", ports: [19531], transports: ["tcp"], processes: ["systemd-journal", "systemd"], description: "systemd-journal-gatewayd HTTP access to the journal" },
  { name: "snmp", title: "SNMP", ports: [161], transports: ["udp"], processes: ["snmpd"], clients: ["snmpget", "snmpwalk", "snmp_exporter", "zabbix_server", "telegraf"], description: "SNMP agent" },
  { name: "snmp-trap", title: "SNMP trap", ports: [162], transports: ["udp"], processes: ["snmptrapd"], clients: ["snmpd"], description: "SNMP trap receiver" },
  { name: "prometheus", title: "Prometheus", ports: [9090], transports: ["tcp"], processes: ["prometheus"], clients: ["grafana", "grafana-server", "promtool"], description: "Prometheus server" },
  { name: "alertmanager", title: "Alertmanager", ports: [9093, 9094], transports: ["tcp", "udp"], processes: ["alertmanager"], clients: ["prometheus", "amtool"], description: "Prometheus Alertmanager (9094 tcp+udp is its cluster gossip)" },
  { name: "pushgateway", title: "Prometheus Pushgateway", ports: [9091], transports: ["tcp"], processes: ["pushgateway"], clients: ["prometheus"], description: "Prometheus Pushgateway" },
  { name: "node-exporter", title: "node_exporter", ports: [9100], transports: ["tcp"], processes: ["node_exporter", "prometheus-node"], clients: ["prometheus", "vmagent", "grafana-agent", "alloy", "otelcol", "otelcol-contrib"], description: "Prometheus node_exporter" },
  { name: "mysqld-exporter", title: "mysqld_exporter", ports: [9104], transports: ["tcp"], processes: ["mysqld_exporter"], clients: ["prometheus", "vmagent"], description: "Prometheus MySQL exporter" },
  { name: "blackbox-exporter", title: "blackbox_exporter", ports: [9115], transports: ["tcp"], processes: ["blackbox_export"], clients: ["prometheus", "vmagent"], description: "Prometheus blackbox exporter" },
  { name: "redis-exporter", title: "redis_exporter", ports: [9121], transports: ["tcp"], processes: ["redis_exporter"], clients: ["prometheus", "vmagent"], description: "Prometheus Redis exporter" },
  { name: "postgres-exporter", title: "postgres_exporter", ports: [9187], transports: ["tcp"], processes: ["postgres_export"], clients: ["prometheus", "vmagent"], description: "Prometheus PostgreSQL exporter" },
  { name: "process-exporter", title: "process-exporter", ports: [9256], transports: ["tcp"], processes: ["process-exporte"], clients: ["prometheus", "vmagent"], description: "Prometheus process exporter" },
  { name: "jetdirect", title: "JetDirect", ports: [9100], transports: ["tcp"], clients: ["socket", "cupsd"], description: "raw printing to a network printer (CUPS socket:// backend)" },
  { name: "grafana", title: "Grafana", ports: [3000], transports: ["tcp"], processes: ["grafana", "grafana-server"], description: "Grafana web UI" },
  { name: "loki", title: "Loki", ports: [3100], transports: ["tcp"], processes: ["loki"], clients: ["promtail", "alloy", "grafana", "grafana-agent", "fluent-bit", "vector"], description: "Grafana Loki HTTP API" },
  { name: "promtail", title: "Promtail", ports: [9080], transports: ["tcp"], processes: ["promtail"], description: "Promtail HTTP (metrics, targets)" },
  { name: "jaeger", title: "Jaeger", ports: [14250, 14268, 16686, 6831, 6832], transports: ["tcp", "udp"], processes: ["jaeger-all-in-one", "jaeger-collector", "jaeger-query", "jaeger-agent", "jaeger"], description: "Jaeger: UI 16686, collector 14250/14268 (tcp), agent 6831/6832 (udp)" },
  { name: "otlp", title: "OpenTelemetry OTLP", ports: [4317, 4318], transports: ["tcp"], processes: ["otelcol", "otelcol-contrib", "alloy", "tempo", "jaeger", "jaeger-all-in-one"], description: "OpenTelemetry Protocol: gRPC 4317, HTTP 4318" },
  { name: "zipkin", title: "Zipkin", ports: [9411], transports: ["tcp"], processes: ["java"], description: "Zipkin span collector" },
  { name: "statsd", title: "StatsD", ports: [8125], transports: ["udp"], processes: ["statsd", "telegraf", "datadog-agent", "agent", "statsd_exporter"], description: "StatsD metrics" },
  { name: "graphite", title: "Graphite carbon", ports: [2003, 2004], transports: ["tcp"], processes: ["carbon-cache", "go-carbon", "carbon-relay"], clients: ["collectd", "telegraf"], description: "Graphite carbon plaintext (2003) and pickle (2004)" },
  { name: "fluentd", title: "Fluentd forward", ports: [24224], transports: ["tcp", "udp"], processes: ["fluentd", "td-agent", "fluent-bit", "ruby"], clients: ["fluent-bit", "fluentd", "dockerd"], description: "Fluentd/Fluent Bit forward protocol" },
  { name: "logstash-beats", title: "Logstash Beats input", ports: [5044], transports: ["tcp"], processes: ["java"], clients: ["filebeat", "metricbeat", "auditbeat", "heartbeat", "packetbeat"], description: "Beats shippers to Logstash" },
  { name: "logstash-api", title: "Logstash API", ports: [9600], transports: ["tcp"], processes: ["java"], description: "Logstash monitoring API" },
  { name: "zabbix-agent", title: "Zabbix agent", ports: [10050], transports: ["tcp"], processes: ["zabbix_agentd", "zabbix_agent2"], clients: ["zabbix_server", "zabbix_proxy"], description: "Zabbix agent (passive checks)" },
  { name: "zabbix-server", title: "Zabbix server", ports: [10051], transports: ["tcp"], processes: ["zabbix_server", "zabbix_proxy"], clients: ["zabbix_agentd", "zabbix_agent2", "zabbix_sender"], description: "Zabbix server or proxy trapper (active checks)" },
  { name: "nrpe", title: "Nagios NRPE", ports: [5666], transports: ["tcp"], processes: ["nrpe"], clients: ["check_nrpe"], description: "Nagios Remote Plugin Executor" },
  { name: "nsca", title: "Nagios NSCA", ports: [5667], transports: ["tcp"], processes: ["nsca"], clients: ["send_nsca"], description: "Nagios Service Check Acceptor" },
  { name: "check-mk", title: "Checkmk agent", ports: [6556], transports: ["tcp"], processes: ["cmk-agent-ctl", "check_mk_agent", "xinetd"], description: "Checkmk agent" },
  { name: "munin", title: "Munin node", ports: [4949], transports: ["tcp"], processes: ["munin-node"], clients: ["munin-update"], description: "Munin node" },
  { name: "nut", title: "Network UPS Tools", ports: [3493], transports: ["tcp"], processes: ["upsd"], clients: ["upsmon", "upsc"], description: "Network UPS Tools upsd" },
  { name: "ipmi", title: "IPMI RMCP", ports: [623], transports: ["udp"], clients: ["ipmitool", "freeipmi"], description: "IPMI over LAN to a BMC" },
  // Configuration management
  { name: "puppet", title: "Puppet", ports: [8140], transports: ["tcp"], processes: ["puppetserver", "java"], clients: ["puppet", "ruby"], description: "Puppet server" },
  { name: "salt", title: "Salt", ports: [4505, 4506], transports: ["tcp"], processes: ["salt-master"], clients: ["salt-minion", "salt-call"], description: "Salt master: publish 4505, request 4506" },
  // Cluster, VPN, routing
  { name: "corosync", title: "Corosync", ports: [5404, 5405, 5406], transports: ["udp"], processes: ["corosync"], clients: ["corosync"], description: "Corosync cluster messaging (Pacemaker)" },
  { name: "pcsd", title: "pcsd", ports: [2224], transports: ["tcp"], processes: ["pcsd", "ruby", "python3"], clients: ["pcs"], description: "Pacemaker/Corosync configuration daemon" },
  { name: "openvpn", title: "OpenVPN", ports: [1194], transports: ["udp", "tcp"], processes: ["openvpn"], clients: ["openvpn"], description: "OpenVPN" },
  { name: "wireguard", title: "WireGuard", ports: [51820], transports: ["udp"], description: "WireGuard VPN (the kernel owns its socket: no process)" },
  { name: "ike", title: "IPsec IKE", ports: [500, 4500], transports: ["udp"], processes: ["charon", "charon-systemd", "pluto", "racoon", "iked"], clients: ["charon", "charon-systemd", "pluto"], description: "IPsec key exchange (500) and NAT traversal (4500): strongSwan, Libreswan" },
  { name: "l2tp", title: "L2TP", ports: [1701], transports: ["udp"], processes: ["xl2tpd"], clients: ["xl2tpd"], description: "Layer 2 Tunneling Protocol" },
  { name: "bgp", title: "BGP", ports: [179], transports: ["tcp"], processes: ["bird", "bgpd", "gobgpd", "bird6", "zebra"], clients: ["bird", "bgpd", "gobgpd"], description: "Border Gateway Protocol (BIRD, FRR, GoBGP; Calico, MetalLB)" },
  // Printing, scanning, desktop
  { name: "ipp", title: "IPP/CUPS", ports: [631], transports: ["tcp", "udp"], processes: ["cupsd", "cups-browsed", "ippeveprinter"], clients: ["ipp", "lp", "lpstat", "cups-browsed"], description: "Internet Printing Protocol (CUPS; udp 631 is legacy CUPS browsing)" },
  { name: "lpd", title: "LPD", ports: [515], transports: ["tcp"], processes: ["lpd", "cups-lpd"], clients: ["lpd", "lpr"], description: "Line Printer Daemon protocol" },
  { name: "sane", title: "SANE", ports: [6566], transports: ["tcp"], processes: ["saned"], clients: ["scanimage"], description: "SANE network scanner daemon" },
  // This program
  { name: "ipcscope", title: "ipcscope", ports: [8000], transports: ["tcp"], processes: ["ipcscope"], clients: ["gemini", "claude", "node", "curl"], description: "ipcscope's own MCP server over Streamable HTTP and its REST mirror" },
];

/**
 * Ports that several services share, on purpose. A process name that one of them runs as decides;
 * otherwise the default is guessed, with low confidence and the alternatives in the reason.
 */
export const SHARED_PORTS: Readonly<Record<string, { services: readonly string[]; default: string; why: string }>> = {
  "tcp/3000": { services: ["http-alt", "grafana"], default: "grafana", why: "Grafana's default, and the usual port of Node, Rails and other dev servers" },
  "tcp/5000": { services: ["http-alt", "docker-registry"], default: "http-alt", why: "Flask and other app servers, and the container registry's default" },
  "tcp/8000": { services: ["http-alt", "ipcscope"], default: "http-alt", why: "a generic web port, and ipcscope's own HTTP port" },
  "tcp/8080": { services: ["http-alt", "jenkins"], default: "http-alt", why: "the most common alternative web port; Jenkins defaults to it (as java, which does not decide)" },
  "tcp/9000": { services: ["fastcgi", "clickhouse", "minio"], default: "fastcgi", why: "PHP-FPM's TCP default, ClickHouse's native port and MinIO's API all use it" },
  "tcp/9090": { services: ["cockpit", "prometheus"], default: "prometheus", why: "Prometheus's default and Cockpit's; systemd holding it means cockpit.socket, as Cockpit ships socket-activated" },
  "tcp/9093": { services: ["kafka", "alertmanager"], default: "alertmanager", why: "Alertmanager's default and Kafka's usual TLS listener (java decides Kafka)" },
  "tcp/9100": { services: ["node-exporter", "jetdirect"], default: "node-exporter", why: "node_exporter's default and network printers' raw port (a CUPS client decides JetDirect)" },
};

/** Processes that hold ports for other programs (proxies, port forwarders, socket activation): never evidence against the port. */
const FORWARDERS = new Set(["haproxy", "nginx", "envoy", "traefik", "caddy", "docker-proxy", "rootlessport", "rootlesskit", "kube-proxy", "kubectl", "socat", "stunnel", "stunnel4", "sshd", "sshd-session", "ssh", "systemd", "xinetd", "inetd", "slirp4netns", "pasta", "conmon", "sslh", "ncat", "nc", "k3s", "k3s-server", "containerd", "dockerd", "podman"]);
/** Names too generic to name a service on their own: runtimes many services share, and launchers. */
const NOT_INDICATIVE = new Set(["java", "node", "python", "python3", "ruby", "perl", "php", "beam.smp", "lua", "dotnet", "bun", "deno", "systemd", "xinetd", "inetd", "master", "agent", "socket", "ipp", "http", "smtp", "lmtp", "imap", "pop3", "x", "kdc", "target", "registry", "distribution", "jaeger", "clickhouse", "k3s", "git", "samba"]);

const portKey = (transport: Transport, port: number) => `${transport}/${port}`;

const BY_PORT = new Map<string, Service[]>();
for (const service of SERVICES) {
  for (const transport of service.transports) {
    for (const port of service.ports) {
      const list = BY_PORT.get(portKey(transport, port)) ?? [];
      list.push(service);
      BY_PORT.set(portKey(transport, port), list);
    }
  }
}

/** Services that use a port, the shared port's default first. */
export function servicesForPort(transport: Transport, port: number): Service[] {
  const list = BY_PORT.get(portKey(transport, port)) ?? [];
  const preferred = SHARED_PORTS[portKey(transport, port)]?.default;
  return [...list].sort((a, b) => Number(b.name === preferred) - Number(a.name === preferred));
}

/** comm is truncated to 15 bytes, and some daemons carry a version (php-fpm8.2): both still match. */
function nameMatches(known: string, proc: string): boolean {
  const k = known.toLowerCase();
  if (k === proc) return true;
  if (proc.length === 15 && k.startsWith(proc)) return true;
  return proc.startsWith(k) && /^[-_.]?\d[\d.]*$/.test(proc.slice(k.length));
}

const runsAs = (service: Service, proc: string | null) => proc !== null && (service.processes ?? []).some((k) => nameMatches(k, proc));
const usedBy = (service: Service, proc: string | null) => proc !== null && (service.clients ?? []).some((k) => nameMatches(k, proc));

function normaliseProcess(name: string | null | undefined): string | null {
  const trimmed = name?.trim();
  if (!trimmed) return null;
  return (trimmed.split("/").pop() ?? trimmed).toLowerCase();
}

/** The first service that names this process as its server, unless the name is too generic to say. */
function serviceOfProcess(proc: string | null): Service | undefined {
  if (proc === null || NOT_INDICATIVE.has(proc)) return undefined;
  return SERVICES.find((s) => runsAs(s, proc));
}

const validPort = (port: number | null) => (port !== null && Number.isInteger(port) && port >= 1 && port <= 65535 ? port : null);
const isEphemeral = (port: number) => port >= EPHEMERAL_PORT_MIN;
/** A table port that may name the service without listening: ephemeral ones only when the table insists. */
function wellKnown(transport: Transport, port: number | null): Service[] {
  if (port === null) return [];
  const services = servicesForPort(transport, port);
  if (isEphemeral(port) && !EPHEMERAL_RANGE_SERVICE_PORTS.includes(portKey(transport, port))) return [];
  return services;
}

const possessive = (title: string) => `${title}'s`;
const LOWER: Record<Confidence, Confidence> = { high: "medium", medium: "low", low: "low" };
const GENERIC = new Set(["http-alt", "https-alt"]);

function listTitles(services: Service[]): string {
  const titles = services.map((s) => s.title);
  return titles.length <= 2 ? titles.join(" and ") : `${titles.slice(0, -1).join(", ")} and ${titles.at(-1)}`;
}

/** "is PostgreSQL's port" / "is shared by Prometheus and Cockpit". */
function portPhrase(candidates: Service[]): string {
  return candidates.length === 1 ? `is ${possessive(candidates[0]!.title)} port` : `is shared by ${listTitles(candidates)}`;
}

interface Pick {
  service: Service;
  confidence: Confidence;
  /** What the process (or client) said, as a clause. */
  why: string;
  /** True when the process name overrode the port. */
  byProcessOnly?: boolean;
}

/** "the process java is a language runtime ..." and friends, for a process that did not decide. */
function silentProcess(proc: string | null, service: Service): string {
  if (proc === null) return "the owning process is not known";
  if (FORWARDERS.has(proc)) return `the process ${proc} is a proxy or launcher, which does not say what it serves`;
  return `the process ${proc} is not one ${service.title} usually runs as`;
}

/** The service side is local: the port's candidates and the owning process decide together. */
function pickLocal(candidates: Service[], proc: string | null): Pick | null {
  const matched = candidates.find((s) => runsAs(s, proc));
  if (matched) {
    return { service: matched, confidence: "high", why: candidates.length > 1 ? `the process ${proc} picks ${matched.title}` : `the process is ${proc}` };
  }
  // A dedicated server's name beats the port (postgres on 6000 is PostgreSQL, not X11); a proxy's or
  // launcher's does not (haproxy on 5432 fronts PostgreSQL), unless the port names nothing at all.
  const byProcess = serviceOfProcess(proc);
  if (byProcess && (candidates.length === 0 || !FORWARDERS.has(proc!))) {
    return { service: byProcess, confidence: "low", why: `the process ${proc} is ${possessive(byProcess.title)} server`, byProcessOnly: true };
  }
  const first = candidates[0];
  if (!first) return null;
  const silent = silentProcess(proc, first);
  if (candidates.length > 1) return { service: first, confidence: "low", why: `${silent}, and no process name decides between them, so ${first.title} is a guess` };
  if (GENERIC.has(first.name)) return { service: first, confidence: "low", why: `${silent}, and any web application may use this port, so HTTP is a guess` };
  return { service: first, confidence: "medium", why: silent };
}

/** The service side is remote: its process is out of sight, so only the local client can confirm. */
function pickRemote(candidates: Service[], proc: string | null): Pick {
  const matched = candidates.find((s) => usedBy(s, proc));
  if (matched) return { service: matched, confidence: "high", why: candidates.length > 1 ? `the client ${proc} picks ${matched.title}` : `the client is ${proc}` };
  const first = candidates[0]!;
  if (candidates.length > 1) return { service: first, confidence: "low", why: `no client name decides between them, so ${first.title} is a guess` };
  if (GENERIC.has(first.name)) return { service: first, confidence: "low", why: "any web application may use this port, so HTTP is a guess" };
  return { service: first, confidence: "medium", why: "the server process is not visible from here" };
}

/** The reason for a local service: the port, how the socket relates to it, and what the process said. */
function localReason(port: number, candidates: Service[], pick: Pick, context: string): string {
  if (!pick.byProcessOnly) return `local port ${port} ${portPhrase(candidates)} and ${context}; ${pick.why}`;
  if (candidates.length === 0) return `local port ${port} ${context} and is no well-known service's port, but ${pick.why}, so only the process name suggests it`;
  const usual = candidates.length === 1 ? `${possessive(candidates[0]!.title)} port` : `the port of ${listTitles(candidates)}`;
  return `local port ${port} ${context}; it is usually ${usual}, but ${pick.why}, so only the process name suggests it`;
}

function portWithEphemeral(port: number | null): string {
  if (port === null) return "none";
  return isEphemeral(port) ? `${port} (ephemeral)` : String(port);
}

export function identifyInet(input: {
  transport: "tcp" | "udp" | "raw";
  state: string;
  localPort: number | null;
  remotePort: number | null;
  listening: (transport: "tcp" | "udp", port: number) => boolean;
  processName?: string | null;
}): ProtocolGuess {
  const proc = normaliseProcess(input.processName);
  if (input.transport === "raw") {
    return { protocol: "unknown", service_port: null, service_side: null, rule: "none", confidence: "low", reason: "a raw socket carries an IP protocol, not ports, so no port rule applies" };
  }
  const transport = input.transport;
  const state = input.state.trim().toUpperCase();
  const local = validPort(input.localPort);
  const remote = validPort(input.remotePort);
  const procNote = proc === null ? "" : ` (process ${proc})`;

  // 1. A listening local port is the service: the LISTEN socket, or a connection accept() returned.
  if (local !== null && (state === "LISTEN" || input.listening(transport, local))) {
    const candidates = servicesForPort(transport, local);
    const pick = pickLocal(candidates, proc);
    const context = state === "LISTEN" ? "is listening" : `listens on this host, so this ${state} socket is an accepted connection`;
    if (!pick) {
      const who = proc === null ? "the owning process is not known" : `the process ${proc} names no known server`;
      return { protocol: "unknown", service_port: local, service_side: "local", rule: "none", confidence: "low", reason: `local port ${local} ${context}, but ${local} is no well-known service's port and ${who}` };
    }
    // Keep the brief's wording for a LISTEN socket: "local port 5432 is listening and is PostgreSQL's port".
    const reason = state === "LISTEN" && !pick.byProcessOnly
      ? `local port ${local} is listening and ${portPhrase(candidates)}; ${pick.why}`
      : localReason(local, candidates, pick, context);
    return { protocol: pick.service.name, service_port: local, service_side: "local", rule: "listening-port", confidence: pick.confidence, reason };
  }

  // 2. A well-known remote port: an outbound connection to that service.
  const remoteCandidates = wellKnown(transport, remote);
  if (remote !== null && remoteCandidates.length > 0) {
    const pick = pickRemote(remoteCandidates, proc);
    const confidence = isEphemeral(remote) ? "low" : pick.confidence;
    const ephemeralNote = isEphemeral(remote) ? ` (${remote} is in the ephemeral range, so this is only a guess)` : "";
    return {
      protocol: pick.service.name, service_port: remote, service_side: "remote", rule: "well-known-remote-port", confidence,
      reason: `remote port ${remote} ${portPhrase(remoteCandidates)} and local port ${local ?? "?"} is not listening, so this is an outbound connection${remoteCandidates.length === 1 ? " to it" : ""}; ${pick.why}${ephemeralNote}`,
    };
  }

  // 3. A well-known local port nobody listens on: UDP servers (no LISTEN state), or a TCP leftover.
  const localCandidates = wellKnown(transport, local);
  if (local !== null && localCandidates.length > 0) {
    const pick = pickLocal(localCandidates, proc)!;
    let confidence = pick.confidence;
    // UDP has no LISTEN state: a bound socket on a service port is that service. For TCP the
    // listener is gone (restarted, or in another network namespace): one level less sure.
    const context = transport === "udp"
      ? `this ${state} UDP socket is bound to it`
      : `nothing listens on it now, so this ${state} socket is likely left from an accepted connection (the listener closed or lives in another network namespace)`;
    if (transport === "tcp") confidence = LOWER[confidence];
    let reason = localReason(local, localCandidates, pick, context);
    if (isEphemeral(local)) {
      confidence = "low";
      reason += ` (${local} is in the ephemeral range, so this is only a guess)`;
    }
    return { protocol: pick.service.name, service_port: local, service_side: "local", rule: "well-known-local-port", confidence, reason };
  }

  const ports = `${portWithEphemeral(local)} → ${portWithEphemeral(remote)}`;
  return { protocol: "unknown", service_port: null, service_side: null, rule: "none", confidence: "low", reason: `no well-known port on either side and the local port is not listening: ${ports}${procNote}` };
}

// ---------------------------------------------------------------------------------------------
// Unix sockets: the path names the service. ss prints abstract names with a leading "@", and "*"
// for sockets without a name (client ends, socketpairs).

export interface UnixSocketRule {
  protocol: string;
  /** What a person calls it, for the reason. */
  title: string;
  pattern: RegExp;
  /** high: the path is distinctive; medium: only a file name, raised to high by a matching process. */
  confidence: "high" | "medium";
  processes?: string[];
}

const RUN = String.raw`(?:/var)?/run`;
const USER_RUN = String.raw`${RUN}/user/\d+`;
const rx = (source: string) => new RegExp(`^${source}$`);

export const UNIX_SOCKETS: readonly UnixSocketRule[] = [
  { protocol: "dbus", title: "the D-Bus system bus", pattern: rx(`${RUN}/dbus/system_bus_socket`), confidence: "high", processes: ["dbus-daemon", "dbus-broker", "dbus-broker-lau", "systemd"] },
  { protocol: "dbus", title: "a D-Bus session bus", pattern: rx(String.raw`(?:${USER_RUN}/bus|@?/tmp/dbus-[\w-]+)`), confidence: "high", processes: ["dbus-daemon", "dbus-broker", "dbus-broker-lau", "systemd"] },
  { protocol: "journald", title: "journald's native socket", pattern: rx(`${RUN}/systemd/journal/socket`), confidence: "high", processes: ["systemd-journal", "systemd"] },
  { protocol: "journald", title: "journald's stdout stream socket", pattern: rx(`${RUN}/systemd/journal/stdout`), confidence: "high", processes: ["systemd-journal", "systemd"] },
  { protocol: "syslog", title: "the syslog socket /dev/log (journald on systemd hosts, else rsyslog or syslog-ng)", pattern: rx(String.raw`(?:/dev/log|${RUN}/systemd/journal/dev-log)`), confidence: "high", processes: ["systemd-journal", "rsyslogd", "syslog-ng", "systemd"] },
  { protocol: "syslog", title: "journald's syslog forwarding socket (read by rsyslog)", pattern: rx(`${RUN}/systemd/journal/syslog`), confidence: "high", processes: ["rsyslogd", "syslog-ng", "systemd"] },
  { protocol: "sd-notify", title: "systemd's notification socket (sd_notify)", pattern: rx(String.raw`(?:${RUN}/systemd/notify|${USER_RUN}/systemd/notify)`), confidence: "high", processes: ["systemd"] },
  { protocol: "systemd-private", title: "systemd's private control socket (systemctl)", pattern: rx(String.raw`(?:${RUN}/systemd/private|${USER_RUN}/systemd/private)`), confidence: "high", processes: ["systemd"] },
  { protocol: "varlink", title: "a systemd Varlink service", pattern: rx(String.raw`${RUN}/(?:systemd|user/\d+/systemd)/.*io\.systemd?\.[\w.]+`), confidence: "high" },
  { protocol: "systemd-coredump", title: "systemd-coredump's socket", pattern: rx(`${RUN}/systemd/coredump`), confidence: "high", processes: ["systemd"] },
  { protocol: "udev-control", title: "udev's control socket (udevadm)", pattern: rx(String.raw`(?:${RUN}/udev/control|@/org/kernel/udev/udevd)`), confidence: "high", processes: ["systemd-udevd", "udevd", "systemd"] },
  { protocol: "docker-api", title: "the Docker Engine API socket", pattern: rx(String.raw`(?:${RUN}/docker\.sock|${USER_RUN}/docker\.sock)`), confidence: "high", processes: ["dockerd", "systemd"] },
  { protocol: "containerd", title: "containerd's API socket", pattern: rx(String.raw`(?:${RUN}/containerd/containerd\.sock(?:\.ttrpc)?|${RUN}/docker/containerd/containerd\.sock(?:\.ttrpc)?)`), confidence: "high", processes: ["containerd", "dockerd"] },
  { protocol: "containerd-shim", title: "a containerd shim socket", pattern: rx(String.raw`(?:${RUN}/containerd/s/[0-9a-f]+|@/containerd-shim/.+)`), confidence: "high", processes: ["containerd-shim"] },
  { protocol: "podman-api", title: "the Podman API socket", pattern: rx(String.raw`(?:${RUN}/podman/podman\.sock|${USER_RUN}/podman/podman\.sock)`), confidence: "high", processes: ["podman", "systemd"] },
  { protocol: "cri-o", title: "CRI-O's socket", pattern: rx(`${RUN}/crio/crio\\.sock`), confidence: "high", processes: ["crio"] },
  { protocol: "kubelet-plugin", title: "a kubelet plugin or pod-resources socket", pattern: rx(String.raw`/var/lib/kubelet/(?:device-plugins|pod-resources|plugins(?:_registry)?)/.+\.sock`), confidence: "high", processes: ["kubelet"] },
  { protocol: "postgresql", title: "a PostgreSQL socket", pattern: /(?:^|\/)\.s\.PGSQL\.\d+$/, confidence: "high", processes: ["postgres", "postmaster", "pgbouncer"] },
  { protocol: "mysql", title: "a MySQL/MariaDB socket", pattern: /(?:^|\/)(?:mysql|mysqld|mariadb|mysqlx)\.sock$/, confidence: "high", processes: ["mysqld", "mariadbd"] },
  { protocol: "redis", title: "a Redis socket", pattern: /(?:^|\/)(?:redis|valkey)[^/]*\.sock$/, confidence: "medium", processes: ["redis-server", "valkey-server"] },
  { protocol: "fastcgi", title: "a PHP-FPM FastCGI socket", pattern: new RegExp(String.raw`(?:(?:^|/)php[\d.]*-fpm[^/]*\.sock|^${RUN}/php-fpm/[^/]+\.sock)$`), confidence: "medium", processes: ["php-fpm"] },
  { protocol: "x11", title: "an X11 display socket", pattern: /^@?\/tmp\/\.X11-unix\/X\d+$/, confidence: "high", processes: ["xorg", "xwayland", "xvfb", "xvnc", "x"] },
  { protocol: "x11-ice", title: "an X session-management (ICE) socket", pattern: /^@?\/tmp\/\.ICE-unix\/\d+$/, confidence: "high" },
  { protocol: "wayland", title: "a Wayland display socket", pattern: rx(String.raw`${USER_RUN}/wayland-\d+`), confidence: "high" },
  { protocol: "pulseaudio", title: "a PulseAudio socket", pattern: rx(String.raw`${USER_RUN}/pulse/native`), confidence: "high", processes: ["pulseaudio", "pipewire-pulse"] },
  { protocol: "pipewire", title: "a PipeWire socket", pattern: rx(String.raw`${USER_RUN}/pipewire-\d+(?:-manager)?`), confidence: "high", processes: ["pipewire"] },
  { protocol: "ssh-agent", title: "an ssh-agent socket", pattern: rx(String.raw`(?:/tmp/ssh-[\w.]+/agent\.\d+|${USER_RUN}/(?:openssh_agent|keyring/ssh|gcr/ssh|ssh-agent\.socket))`), confidence: "high", processes: ["ssh-agent", "gnome-keyring-d", "gcr-ssh-agent"] },
  { protocol: "gpg-agent", title: "a GnuPG agent socket", pattern: /(?:^|\/)S\.gpg-agent(?:\.ssh|\.extra|\.browser)?$/, confidence: "high", processes: ["gpg-agent"] },
  { protocol: "nscd", title: "nscd's socket", pattern: rx(`${RUN}/nscd/socket`), confidence: "high", processes: ["nscd"] },
  { protocol: "sssd", title: "an SSSD responder pipe", pattern: rx(String.raw`/var/lib/sss/pipes/(?:private/)?[\w.-]+`), confidence: "high", processes: ["sssd", "sssd_nss", "sssd_pam", "sssd_be", "sssd_sudo", "sssd_pac", "sssd_ssh", "sssd_autofs", "sssd_ifp", "systemd"] },
  { protocol: "polkit", title: "polkit's agent-helper socket", pattern: rx(`${RUN}/polkit/agent-helper\\.socket`), confidence: "high", processes: ["systemd", "polkitd"] },
  { protocol: "snapd-api", title: "snapd's API socket", pattern: rx(String.raw`${RUN}/snapd(?:-snap)?\.socket`), confidence: "high", processes: ["snapd", "systemd"] },
  { protocol: "libvirt", title: "a libvirt daemon socket", pattern: rx(String.raw`(?:${RUN}/libvirt/[\w-]+-sock(?:-ro|-admin)?|${USER_RUN}/libvirt/[\w-]+-sock)`), confidence: "high", processes: ["libvirtd", "virtqemud", "virtproxyd", "virtlogd", "virtlockd", "virtnetworkd", "virtstoraged", "virtnodedevd", "virtsecretd", "virtinterfaced", "virtnwfilterd", "systemd"] },
  { protocol: "cockpit", title: "a Cockpit socket", pattern: rx(String.raw`${RUN}/cockpit/.+`), confidence: "high", processes: ["cockpit-ws", "cockpit-tls", "cockpit-session", "systemd"] },
  { protocol: "chrony-cmd", title: "chronyd's command socket (chronyc)", pattern: rx(`${RUN}/chrony/chronyd\\.sock`), confidence: "high", processes: ["chronyd"] },
  { protocol: "rpcbind", title: "rpcbind's socket", pattern: rx(`${RUN}/rpcbind\\.sock`), confidence: "high", processes: ["rpcbind", "systemd"] },
  { protocol: "selinux-setrans", title: "the SELinux MCS translation socket (mcstransd)", pattern: rx(`${RUN}/setrans/\\.setrans-unix`), confidence: "high", processes: ["mcstransd"] },
  { protocol: "auditd", title: "the audit dispatcher's event socket", pattern: rx(String.raw`${RUN}/(?:audit/)?audispd_events`), confidence: "high", processes: ["auditd", "audispd"] },
  { protocol: "networkmanager", title: "NetworkManager's private DHCP helper socket", pattern: rx(`${RUN}/NetworkManager/private-dhcp`), confidence: "high", processes: ["networkmanager"] },
  { protocol: "gpm", title: "gpm's mouse control socket", pattern: rx("/dev/gpmctl"), confidence: "high", processes: ["gpm"] },
  { protocol: "mcelog", title: "mcelog's client socket", pattern: rx(`${RUN}/mcelog-client`), confidence: "high", processes: ["mcelog"] },
  { protocol: "lvm", title: "an LVM daemon socket", pattern: rx(String.raw`${RUN}/lvm/(?:lvmpolld|lvmetad|lvmlockd)\.socket`), confidence: "high", processes: ["lvmpolld", "lvmetad", "lvmlockd", "systemd"] },
  { protocol: "multipathd", title: "multipathd's control socket", pattern: rx("@/org/kernel/linux/storage/multipathd"), confidence: "high", processes: ["multipathd", "systemd"] },
  { protocol: "iscsid", title: "iscsid's control socket (iscsiadm)", pattern: rx("@ISCSIADM_ABSTRACT_NAMESPACE"), confidence: "high", processes: ["iscsid", "systemd"] },
  { protocol: "irqbalance", title: "irqbalance's control socket", pattern: rx(String.raw`${RUN}/irqbalance/irqbalance\d+\.sock`), confidence: "high", processes: ["irqbalance"] },
  { protocol: "gssproxy", title: "gssproxy's socket", pattern: rx(String.raw`(?:${RUN}/gssproxy\.sock|/var/lib/gssproxy/[\w.]+\.sock)`), confidence: "high", processes: ["gssproxy"] },
  { protocol: "avahi", title: "avahi-daemon's client socket", pattern: rx(`${RUN}/avahi-daemon/socket`), confidence: "high", processes: ["avahi-daemon"] },
  { protocol: "ipp", title: "CUPS's local socket", pattern: rx(`${RUN}/cups/cups\\.sock`), confidence: "high", processes: ["cupsd", "systemd"] },
  { protocol: "haproxy-admin", title: "HAProxy's runtime API socket", pattern: /(?:^|\/)haproxy[^/]*\/(?:admin|stats|api)\.sock$|(?:^|\/)haproxy[^/]*\.sock$/, confidence: "medium", processes: ["haproxy"] },
  { protocol: "postfix-internal", title: "a Postfix internal service socket", pattern: rx(String.raw`/var/spool/postfix/(?:private|public)/[\w.-]+`), confidence: "high", processes: ["master"] },
  { protocol: "dovecot", title: "a Dovecot internal socket", pattern: rx(String.raw`${RUN}/dovecot/.+`), confidence: "high", processes: ["dovecot", "auth", "anvil", "log", "config"] },
  { protocol: "clamav", title: "clamd's socket", pattern: /(?:^|\/)clamd[^/]*\.(?:sock|ctl)$/, confidence: "medium", processes: ["clamd"] },
  { protocol: "supervisord", title: "supervisord's control socket", pattern: /(?:^|\/)supervisor(?:d)?\.sock$/, confidence: "medium", processes: ["supervisord"] },
  { protocol: "uuidd", title: "uuidd's request socket", pattern: rx(`${RUN}/uuidd/request`), confidence: "high", processes: ["uuidd", "systemd"] },
  { protocol: "pcscd", title: "pcscd's smart-card socket", pattern: rx(`${RUN}/pcscd/pcscd\\.comm`), confidence: "high", processes: ["pcscd", "systemd"] },
  { protocol: "tmux", title: "a tmux server socket", pattern: /^(?:\/tmp|\/run|\/var\/run)\/tmux-\d+\/[^/]+$/, confidence: "high", processes: ["tmux", "tmux: server"] },
  { protocol: "screen", title: "a GNU screen session socket", pattern: /^(?:\/run|\/var\/run)\/screen\/S-[^/]+\/[^/]+$/, confidence: "high", processes: ["screen"] },
];

export function identifyUnix(input: { path: string | null; processName?: string | null }): ProtocolGuess {
  const proc = normaliseProcess(input.processName);
  const path = input.path?.trim() || null;
  const base = { service_port: null, service_side: null } as const;
  if (path === null || path === "*") {
    return { ...base, protocol: "unknown", rule: "none", confidence: "low", reason: "the socket has no name (a client end or a socketpair), so only its peer's path can identify it" };
  }
  const rule = UNIX_SOCKETS.find((r) => r.pattern.test(path));
  if (!rule) {
    const by = proc === null ? "" : `; the process is ${proc}`;
    return { ...base, protocol: "unknown", rule: "none", confidence: "low", reason: `${path} matches no well-known socket path${by}` };
  }
  const matches = proc !== null && (rule.processes ?? []).some((k) => nameMatches(k, proc));
  const confidence: Confidence = matches ? "high" : rule.confidence;
  const who = proc === null ? "" : matches ? `; the process is ${proc}` : `; the process ${proc} is not its usual owner`;
  return { ...base, protocol: rule.protocol, rule: "unix-path", confidence, reason: `${path} is ${rule.title}${who}` };
}
