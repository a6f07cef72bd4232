import { expect, test } from "bun:test";
import { cidrContains, isLoopbackIp, parseCidr, unmapV4 } from "../../../src/snapshot/cidr.ts";

test.each([
  ["10.0.0.0/8", "10.20.30.40", true],
  ["10.0.0.0/8", "11.0.0.1", false],
  ["192.168.1.7", "192.168.1.7", true],
  ["0.0.0.0/0", "8.8.8.8", true],
  ["127.0.0.0/8", "::ffff:127.0.0.1", true],
  ["2001:db8::/32", "2001:db8:1::5", true],
  ["2001:db8::/32", "2001:db9::5", false],
  ["::1/128", "::1", true],
  ["::ffff:0:0/96", "::ffff:10.1.2.3", true],
  ["10.0.0.0/8", "fe80::1", false],
])("%s contains %s: %p", (cidr, ip, expected) => {
  expect(cidrContains(parseCidr(cidr)!, ip)).toBe(expected);
});

test.each(["10.0.0.0/33", "300.1.1.1/8", "::1/129", "abc", "10.0.0.0/x", "1:2:3", "1::2::3", ""])("%p is not a CIDR", (text) => {
  expect(parseCidr(text)).toBeNull();
});

test("loopback includes 127/8, ::1 and v4-mapped 127.x", () => {
  for (const ip of ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"]) expect(isLoopbackIp(ip)).toBe(true);
  for (const ip of ["10.0.0.1", "::", "0.0.0.0", "::ffff:10.0.0.1"]) expect(isLoopbackIp(ip)).toBe(false);
  expect(unmapV4("::ffff:10.0.0.1")).toBe("10.0.0.1");
  expect(unmapV4("::1")).toBe("::1");
});
