/**
 * The Hubble flow parser and the flow-level judge. The parser reads the 1.13, 1.16 and 1.20
 * spellings (test/verify/fixtures/hubble-*.jsonl, built from the sources in hubble-SOURCES.md) and a
 * real public capture verbatim (hubble-export-rst.jsonl, from Cilium's own docs). The judge gives
 * exact check rows for vxlan, geneve and native, for contradictions both ways, and for an empty answer.
 */
import test, { type ExecutionContext } from "ava";
import { readFileSync, readdirSync } from "node:fs";
import * as path from "node:path";

import {
  HubbleFlowsError,
  NO_FLOWS_REASON,
  hubbleFlowProof,
  parseHubbleFlows,
  type FlowProofInput,
  type HubbleFlow,
} from "../../infra/verify/hubble";

const fixture = (name: string): string =>
  readFileSync(path.join(__dirname, "fixtures", `hubble-${name}.jsonl`), "utf8");

const SERVER = "10.0.1.23";
const CLIENT = "10.0.2.41";

/** The fields every flow of the measured connection in the fixtures shares. */
function measured(
  line: number,
  time: string,
  observationPoint: string,
  isReply: boolean,
  clientPort: number,
): HubbleFlow {
  return {
    line,
    envelope: "GetFlowsResponse",
    time: `2026-12-03T12:0${time}`,
    nodeName: "default/node-2",
    type: "L3_L4",
    verdict: "FORWARDED",
    observationPoint,
    source: isReply ? SERVER : CLIENT,
    destination: isReply ? CLIENT : SERVER,
    protocol: "TCP",
    sourcePort: isReply ? 5201 : clientPort,
    destinationPort: isReply ? clientPort : 5201,
    isReply,
  };
}

/** The eight flows of one measurement: SYN, SYN-ACK, FIN, FIN-ACK of the control and data connections. */
function measurement(replyPoint: string): HubbleFlow[] {
  return [
    measured(1, "1:02.104518223Z", "TO_ENDPOINT", false, 43510),
    measured(2, "1:02.104601947Z", replyPoint, true, 43510),
    measured(3, "1:12.233017560Z", "TO_ENDPOINT", false, 43510),
    measured(4, "1:12.233104391Z", replyPoint, true, 43510),
    measured(5, "1:02.109853066Z", "TO_ENDPOINT", false, 43512),
    measured(6, "1:02.109920771Z", replyPoint, true, 43512),
    measured(7, "1:12.231558302Z", "TO_ENDPOINT", false, 43512),
    measured(8, "1:12.231640019Z", replyPoint, true, 43512),
  ];
}

test("the 1.13 spelling (hubble v0.11 -o jsonpb, no uuid): eight GetFlowsResponse lines, the replies at TO_OVERLAY", (t) => {
  t.deepEqual(parseHubbleFlows(fixture("1.13-vxlan")), {
    flows: measurement("TO_OVERLAY"),
    lostEvents: 0,
    otherEvents: 0,
  });
});

test("the 1.16 and 1.20 spellings (in-tree CLI, uuid on every flow) parse to the same fields", (t) => {
  t.deepEqual(parseHubbleFlows(fixture("1.16-geneve")).flows, measurement("TO_OVERLAY"));
  t.deepEqual(parseHubbleFlows(fixture("1.20-native")).flows, measurement("TO_STACK"));
});

test("a real capture from Cilium's docs (export.rst, field-masked): ICMPv6 and TCP drops, no observation point", (t) => {
  const common = {
    envelope: "GetFlowsResponse" as const,
    nodeName: "kind-kind/kind-worker",
    type: null,
    verdict: "DROPPED",
    observationPoint: "UNKNOWN_POINT",
    isReply: null,
  };
  t.deepEqual(parseHubbleFlows(fixture("export-rst")), {
    flows: [
      {
        ...common,
        line: 1,
        time: "2023-08-21T12:12:13.517394084Z",
        source: "fe80::64d8:8aff:fe72:fc14",
        destination: "ff02::2",
        protocol: "ICMPv6",
        sourcePort: null,
        destinationPort: null,
      },
      {
        ...common,
        line: 2,
        time: "2023-08-21T12:12:18.510175415Z",
        source: "10.244.1.60",
        destination: "10.244.1.5",
        protocol: "TCP",
        sourcePort: 44916,
        destinationPort: 80,
      },
    ],
    lostEvents: 0,
    otherEvents: 0,
  });
});

test("a bare Flow (old CLIs' -o json), lost-events and node-status lines, blank lines and CRLF", (t) => {
  const wrapped = fixture("1.13-vxlan").split("\n")[1] ?? "";
  const bare = JSON.stringify((JSON.parse(wrapped) as { flow: unknown }).flow);
  const text = [
    "",
    `${bare}\r`,
    '{"lost_events":{"source":"HUBBLE_RING_BUFFER","num_events_lost":"12"},"node_name":"default/node-2","time":"2026-12-03T12:01:13Z"}',
    '{"node_status":{"state_change":"NODE_CONNECTED","node_names":["node-2"]}}',
    "",
  ].join("\n");
  const parsed = parseHubbleFlows(text);
  t.deepEqual(parsed.flows, [{ ...measurement("TO_OVERLAY")[1], line: 2, envelope: "Flow" } as HubbleFlow]);
  t.is(parsed.lostEvents, 1);
  t.is(parsed.otherEvents, 1);
});

test("an observation point printed as a number is named from flow.proto; an unknown one is kept as its number", (t) => {
  const line = (p: number) =>
    `{"flow":{"IP":{"source":"10.0.1.23","destination":"10.0.2.41"},"l4":{"TCP":{"source_port":5201}},"trace_observation_point":${p}}}`;
  const flows = parseHubbleFlows([line(11), line(4), line(99)].join("\n")).flows;
  t.deepEqual(
    flows.map((f) => [f.observationPoint, f.sourcePort, f.destinationPort, f.verdict, f.time]),
    [
      ["TO_NETWORK", 5201, 0, "VERDICT_UNKNOWN", null],
      ["TO_OVERLAY", 5201, 0, "VERDICT_UNKNOWN", null],
      ["99", 5201, 0, "VERDICT_UNKNOWN", null],
    ],
  );
});

test("malformed lines fail with the line number, what is wrong and the line itself", (t) => {
  const err = (text: string) => t.throws(() => parseHubbleFlows(text), { instanceOf: HubbleFlowsError })?.message;
  t.is(
    err('{"flow":{}}\nWarning: Hubble is not healthy\n'),
    "hubble observe output line 2 is not JSON (Unexpected token 'W', \"Warning: H\"... is not valid JSON): " +
      '"Warning: Hubble is not healthy". Fix: the lines must come from `hubble observe -o jsonpb` ' +
      "(scripts/node/hubble-flows.sh), nothing else on stdout.",
  );
  t.is(err("[1,2]"), 'hubble observe output line 1 is not a JSON object: "[1,2]"');
  t.is(
    err('{"time":"x"}'),
    'hubble observe output line 1 is neither a GetFlowsResponse ({"flow":…}) nor a Flow: "{\\"time\\":\\"x\\"}"',
  );
  t.is(err('{"flow":"x"}'), 'hubble observe output line 1: "flow" is not an object: "{\\"flow\\":\\"x\\"}"');
  t.is(
    err('{"flow":{"IP":{"source":10}}}'),
    'hubble observe output line 1: flow.IP.source is not a string: "{\\"flow\\":{\\"IP\\":{\\"source\\":10}}}"',
  );
  t.is(
    err('{"flow":{"l4":{"TCP":{"source_port":70000}}}}'),
    'hubble observe output line 1: flow.l4.TCP.source_port is not a port number: "{\\"flow\\":{\\"l4\\":{\\"TCP\\":{\\"source_port\\":70000}}}}"',
  );
  t.is(
    err('{"flow":{"is_reply":"yes"}}'),
    'hubble observe output line 1: flow.is_reply is not a boolean: "{\\"flow\\":{\\"is_reply\\":\\"yes\\"}}"',
  );
  const long = `{"flow":{"IP":{"source":1}},"pad":"${"x".repeat(300)}"}`;
  // a long line is quoted to its first 200 characters and an ellipsis
  t.is(
    err(long),
    'hubble observe output line 1: flow.IP.source is not a string: "{\\"flow\\":{\\"IP\\":{\\"source\\":1}},\\"pad\\":\\"' +
      `${"x".repeat(200 - 35)}…"`,
  );
});

function proof(routingMode: FlowProofInput["routingMode"], name: string, extra: Partial<FlowProofInput> = {}) {
  return hubbleFlowProof({
    routingMode,
    ciliumVersion: { "1.13-vxlan": "1.13.4", "1.16-geneve": "1.16.19", "1.20-native": "1.20.0" }[name] ?? "?",
    serverPodIp: SERVER,
    clientPodIp: CLIENT,
    port: 5201,
    node: "node-2",
    output: fixture(name),
    ...extra,
  });
}

const SEEN = {
  scope: "node-2 hubble",
  check: "flows of the measured connection",
  expected: "≥ 1 flow of TCP 10.0.1.23:5201 ↔ 10.0.2.41 in the agent's Hubble ring buffer",
  actual: "8 (of 8 flows printed)",
  ok: true,
};
const TUNNEL = (dev: string, actual: string, ok: boolean) => ({
  scope: "node-2 hubble",
  check: "flows through the overlay",
  expected: `≥ 1 at TO_OVERLAY (the server's replies leave through ${dev})`,
  actual,
  ok,
});
const NATIVE = (actual: string, ok: boolean) => ({
  scope: "node-2 hubble",
  check: "flows through the overlay",
  expected: "none at TO_OVERLAY or FROM_OVERLAY (native routing: no tunnel)",
  actual,
  ok,
});

test("vxlan on 1.13: the server's replies seen TO_OVERLAY prove the tunnel", (t) => {
  t.deepEqual(proof("vxlan", "1.13-vxlan"), {
    ok: true,
    observationPoints: ["TO_ENDPOINT", "TO_OVERLAY"],
    flows: 8,
    checks: [SEEN, TUNNEL("cilium_vxlan", "4 (TO_ENDPOINT 4, TO_OVERLAY 4)", true)],
    summary:
      "Hubble in the Cilium 1.13.4 agent on node-2 saw 8 flows of TCP 10.0.1.23:5201 ↔ 10.0.2.41 " +
      "(TO_ENDPOINT 4, TO_OVERLAY 4), 4 leaving through the overlay: vxlan tunnel, confirmed per flow.",
  });
});

/** The proof of `routingMode` from capture `name` is ok or not, with these checks and this summary. */
function proves(
  t: ExecutionContext,
  [routingMode, name]: [FlowProofInput["routingMode"], string],
  expected: { readonly ok: boolean; readonly checks: readonly unknown[]; readonly summary: string },
): void {
  const p = proof(routingMode, name);
  t.is(p.ok, expected.ok);
  t.deepEqual(p.checks, expected.checks);
  t.is(p.summary, expected.summary);
}

test("geneve on 1.16: the same proof through cilium_geneve", (t) => {
  proves(t, ["geneve", "1.16-geneve"], {
    ok: true,
    checks: [SEEN, TUNNEL("cilium_geneve", "4 (TO_ENDPOINT 4, TO_OVERLAY 4)", true)],
    summary:
      "Hubble in the Cilium 1.16.19 agent on node-2 saw 8 flows of TCP 10.0.1.23:5201 ↔ 10.0.2.41 " +
      "(TO_ENDPOINT 4, TO_OVERLAY 4), 4 leaving through the overlay: geneve tunnel, confirmed per flow.",
  });
});

test("native on 1.20: flows seen, none at the overlay (replies TO_STACK)", (t) => {
  t.deepEqual(proof("native", "1.20-native"), {
    ok: true,
    observationPoints: ["TO_ENDPOINT", "TO_STACK"],
    flows: 8,
    checks: [SEEN, NATIVE("0 (TO_ENDPOINT 4, TO_STACK 4)", true)],
    summary:
      "Hubble in the Cilium 1.20.0 agent on node-2 saw 8 flows of TCP 10.0.1.23:5201 ↔ 10.0.2.41 " +
      "(TO_ENDPOINT 4, TO_STACK 4), none through the overlay: native routing, confirmed per flow.",
  });
});

test("a contradiction fails either way: native asked but flows tunnelled, vxlan asked but none at TO_OVERLAY", (t) => {
  // Tunnelled although native was asked for.
  proves(t, ["native", "1.13-vxlan"], {
    ok: false,
    checks: [SEEN, NATIVE("4 (TO_ENDPOINT 4, TO_OVERLAY 4)", false)],
    summary:
      "Hubble in the Cilium 1.13.4 agent on node-2 saw 4 of 8 flows of TCP 10.0.1.23:5201 ↔ 10.0.2.41 at the overlay " +
      "(TO_ENDPOINT 4, TO_OVERLAY 4): the connection was tunnelled although native routing was asked for.",
  });
  // Routed directly although vxlan was asked for.
  proves(t, ["vxlan", "1.20-native"], {
    ok: false,
    checks: [SEEN, TUNNEL("cilium_vxlan", "0 (TO_ENDPOINT 4, TO_STACK 4)", false)],
    summary:
      "Hubble in the Cilium 1.20.0 agent on node-2 saw 8 flows of TCP 10.0.1.23:5201 ↔ 10.0.2.41 " +
      "(TO_ENDPOINT 4, TO_STACK 4), none at TO_OVERLAY: the replies did not leave through the vxlan tunnel that was asked for.",
  });
});

test("no flow of the measured connection: not ok, with why it can happen and the fix", (t) => {
  for (const mode of ["vxlan", "native"] as const) {
    const p = hubbleFlowProof({
      routingMode: mode,
      ciliumVersion: "1.13.4",
      serverPodIp: SERVER,
      port: 5201,
      output: "",
    });
    t.false(p.ok);
    t.deepEqual([p.flows, p.observationPoints], [0, []]);
    t.deepEqual(p.checks[0], {
      scope: "hubble",
      check: "flows of the measured connection",
      expected: "≥ 1 flow of TCP 10.0.1.23:5201 in the agent's Hubble ring buffer",
      actual: `none (of 0 flows printed): ${NO_FLOWS_REASON}`,
      ok: false,
    });
    t.deepEqual([p.checks[1]?.actual, p.checks[1]?.ok], ["no flows to judge", false]);
    t.is(
      p.summary,
      "Hubble in the Cilium 1.13.4 agent reported no flow of TCP 10.0.1.23:5201: the agent's Hubble ring buffer " +
        "(hubble-event-buffer-capacity, 4095 events by default) was overwritten by other traffic before the query, " +
        "or Hubble is disabled in the agents (Helm hubble.enabled=false), or the query ran before the iperf3 connection. " +
        "Fix: keep Hubble enabled (hubble.enabled=true, the chart's default) and run `pulumi up` again: the measurement " +
        "runs anew and the flows are read right after it.",
    );
  }
});

test("only the measured connection counts: another client, another port or UDP is not judged", (t) => {
  const other = proof("vxlan", "1.13-vxlan", { clientPodIp: "10.0.0.9" });
  t.deepEqual(
    [other.ok, other.flows, other.checks[0]?.actual],
    [false, 0, `none (of 8 flows printed): ${NO_FLOWS_REASON}`],
  );
  t.deepEqual(proof("vxlan", "1.13-vxlan", { port: 5202 }).flows, 0);
  const udp = fixture("1.13-vxlan").replaceAll('"l4":{"TCP"', '"l4":{"UDP"');
  t.is(proof("vxlan", "1.13-vxlan", { output: udp }).flows, 0);
  const lost =
    '{"lost_events":{"source":"HUBBLE_RING_BUFFER","num_events_lost":"4095"},"node_name":"default/node-2","time":"2026-12-03T12:01:13Z"}\n';
  t.is(
    proof("vxlan", "1.13-vxlan", { output: lost }).checks[0]?.actual,
    `none (of 0 flows printed; 1 lost-events notices): ${NO_FLOWS_REASON}`,
  );
});

test("every Hubble fixture is listed with its sources in hubble-SOURCES.md", (t) => {
  const dir = path.join(__dirname, "fixtures");
  const sources = readFileSync(path.join(dir, "hubble-SOURCES.md"), "utf8");
  const fixtures = readdirSync(dir).filter((f) => f.startsWith("hubble-") && f.endsWith(".jsonl"));
  t.deepEqual(fixtures.sort(), [
    "hubble-1.13-vxlan.jsonl",
    "hubble-1.16-geneve.jsonl",
    "hubble-1.20-native.jsonl",
    "hubble-export-rst.jsonl",
  ]);
  for (const f of fixtures) {
    t.true(sources.includes(`\`${f}\``), `${f} is not in hubble-SOURCES.md`);
  }
});
