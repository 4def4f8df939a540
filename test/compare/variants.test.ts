/**
 * `compare --variants`: the grammar (exact messages, row by row), the switch relative to the
 * user's config, what each variant changes (Cilium only, or also k3s), and the values checked by
 * the program's own parser before anything runs.
 */
import test from "ava";

import { parseLabConfig } from "../../infra/config";
import { HELP, parseCompareArgs, UsageError } from "../../scripts/compare/args";
import { planVariants, variantSwitch, SWITCHED_KEYS } from "../../scripts/compare/modes";
import { planLines } from "../../scripts/compare/summary";
import { nearestVariantKey, parseVariant, parseVariants, VARIANT_KEYS } from "../../scripts/compare/variants";

const THE_ISSUES = "vxlan,native,native+hostRouting=bpf+kubeProxyReplacement=true+bpfMasquerade=true";

test("--variants: the issue's example parses into three variants, the keys in the order given; --modes stays a shorthand", (t) => {
  const args = parseCompareArgs(["--variants", THE_ISSUES]);
  t.deepEqual(args.variants, [
    { name: "vxlan", mode: "vxlan", keys: {} },
    { name: "native", mode: "native", keys: {} },
    {
      name: "native+hostRouting=bpf+kubeProxyReplacement=true+bpfMasquerade=true",
      mode: "native",
      keys: { hostRouting: "bpf", kubeProxyReplacement: "true", bpfMasquerade: "true" },
    },
  ]);
  t.is(args.listedAs, "--variants");
  t.deepEqual(args.modes, ["vxlan", "native"]);
  t.deepEqual(parseCompareArgs(["--modes", "geneve,native"]).variants, parseVariants("geneve,native"));
  t.deepEqual(parseVariant(" native + bandwidthManager=bbr ").keys, { bandwidthManager: "bbr" });
  t.is(VARIANT_KEYS.join(" "), "kubeProxyReplacement bpfMasquerade hostRouting bandwidthManager ipv4BigTcp hubble");
});

const errors: [string[], string][] = [
  [
    ["--variants", "native+networkMtu=9000"],
    'compare: variant "native+networkMtu=9000": networkMtu cannot be a variant key: it is the libvirt network\'s MTU: ' +
      "changing it replaces the network and every VM, which is a new lab, not a switch between measurements. " +
      "Set cilium-lab:networkMtu on the stack and run compare on that stack",
  ],
  [
    ["--variants", "native+hostRoute=bpf"],
    'compare: variant "native+hostRoute=bpf": unknown key "hostRoute" (did you mean hostRouting? variant keys: ' +
      "kubeProxyReplacement, bpfMasquerade, hostRouting, bandwidthManager, ipv4BigTcp, hubble)",
  ],
  [
    ["--variants", "vxlan+kubeproxyreplacement=true"],
    'compare: variant "vxlan+kubeproxyreplacement=true": unknown key "kubeproxyreplacement" (did you mean kubeProxyReplacement? ' +
      "variant keys: kubeProxyReplacement, bpfMasquerade, hostRouting, bandwidthManager, ipv4BigTcp, hubble)",
  ],
  [
    ["--variants", "native+routingMode=vxlan"],
    'compare: variant "native+routingMode=vxlan": routingMode cannot be a variant key: the routing mode is the variant\'s first part (e.g. native+hostRouting=bpf)',
  ],
  [
    ["--variants", "vxlan+autoDirectNodeRoutes=true"],
    'compare: variant "vxlan+autoDirectNodeRoutes=true": autoDirectNodeRoutes cannot be a variant key: the routing mode sets it (true for native, false for the tunnels)',
  ],
  [
    ["--variants", "native+hostRouting=bpf+hostRouting=legacy"],
    'compare: variant "native+hostRouting=bpf+hostRouting=legacy" sets hostRouting twice',
  ],
  [
    ["--variants", "native+nodeCpu=4"],
    'compare: variant "native+nodeCpu=4": unknown key "nodeCpu" (variant keys: kubeProxyReplacement, bpfMasquerade, hostRouting, bandwidthManager, ipv4BigTcp, hubble)',
  ],
  [
    ["--variants", "native+hostRouting"],
    'compare: variant "native+hostRouting": hostRouting needs a value (key=value, e.g. hostRouting=true)',
  ],
  [
    ["--variants", "native+hubble="],
    'compare: variant "native+hubble=": hubble needs a value (key=value, e.g. hubble=true)',
  ],
  [
    ["--variants", "native++hubble=false"],
    'compare: variant "native++hubble=false" has an empty part (write mode+key=value+key=value)',
  ],
  [
    ["--variants", "hostRouting=bpf"],
    'compare: variant "hostRouting=bpf" does not start with a routing mode (start with vxlan, geneve, native; e.g. native+hostRouting=bpf)',
  ],
  [
    ["--variants", "+hubble=false"],
    'compare: variant "+hubble=false" does not start with a routing mode (start with vxlan, geneve, native; e.g. native+hostRouting=bpf)',
  ],
  [
    ["--variants", "ipip+hubble=false"],
    'compare: unknown routing mode "ipip" in variant "ipip+hubble=false" (choose from vxlan, geneve, native)',
  ],
  [["--variants", "vxlan,native,vxlan"], 'compare: variant "vxlan" is listed twice in --variants'],
  [
    ["--variants", "native+hubble=false+bpfMasquerade=true,native+bpfMasquerade=true+hubble=false"],
    'compare: variants "native+hubble=false+bpfMasquerade=true" and "native+bpfMasquerade=true+hubble=false" are the same (only the order of their keys differs)',
  ],
  [
    ["--variants", ","],
    "compare: --variants is empty (e.g. --variants vxlan,native,native+hostRouting=bpf+kubeProxyReplacement=true+bpfMasquerade=true)",
  ],
  [
    ["--variants", "vxlan,,native"],
    'compare: --variants "vxlan,,native" has an empty entry (comma-separated, e.g. vxlan,native)',
  ],
  [["--variants"], "compare: --variants needs a value, e.g. --variants vxlan,native+kubeProxyReplacement=true"],
  [
    ["--modes", "vxlan", "--variants", "native"],
    "compare: use --modes or --variants, not both (--modes vxlan,native is the same as --variants vxlan,native)",
  ],
];

for (const [argv, message] of errors) {
  test(`\`${argv.join(" ")}\` → ${message}`, (t) => {
    const err = t.throws(() => parseCompareArgs(argv), { instanceOf: UsageError });
    t.is(err?.message, message);
  });
}

test("the nearest variant key is the program's own nearest stack key (case-insensitive edit distance), when that is a variant key", (t) => {
  t.is(nearestVariantKey("bpfmasquerading"), "bpfMasquerade");
  t.is(nearestVariantKey("ipv4bigtcp"), "ipv4BigTcp");
  t.is(nearestVariantKey("bandwidthManger"), "bandwidthManager");
  t.is(nearestVariantKey("nodeCpu"), undefined, "nodeCpus is nearest, and it is no variant key");
});

const USER = { routingMode: "vxlan", nodeCpus: "4" };

test("the switch is relative to the user's config: the variant's keys are set, every other switched key the user has is put back, the rest removed", (t) => {
  const [plain, bpf] = parseVariants("native,native+hostRouting=bpf+kubeProxyReplacement=true+bpfMasquerade=true");
  t.deepEqual(variantSwitch(bpf!, USER), {
    set: {
      routingMode: "native",
      autoDirectNodeRoutes: "true",
      nativeRoutingCidr: "10.0.0.0/22",
      hostRouting: "bpf",
      kubeProxyReplacement: "true",
      bpfMasquerade: "true",
    },
    remove: ["bandwidthManager", "ipv4BigTcp", "hubble"],
  });
  const own = { ...USER, kubeProxyReplacement: "true", hubble: "false" };
  t.deepEqual(variantSwitch(plain!, own), {
    set: {
      routingMode: "native",
      autoDirectNodeRoutes: "true",
      nativeRoutingCidr: "10.0.0.0/22",
      kubeProxyReplacement: "true",
      hubble: "false",
    },
    remove: ["bpfMasquerade", "hostRouting", "bandwidthManager", "ipv4BigTcp"],
  });
  t.deepEqual(SWITCHED_KEYS, ["routingMode", "autoDirectNodeRoutes", "nativeRoutingCidr", ...VARIANT_KEYS]);
});

test("what each variant changes: Cilium values only, except a kubeProxyReplacement change, which also re-runs k3s (and says so)", (t) => {
  const planned = planVariants(
    parseVariants(
      "vxlan,native,native+kubeProxyReplacement=true+bpfMasquerade=true,native+kubeProxyReplacement=true,vxlan+hubble=true",
    ),
    USER,
  );
  t.deepEqual(
    planned.map((p) => [p.variant, p.changes.k3s, p.changes.summary]),
    [
      ["vxlan", false, "nothing (no config change from the stack's own config): the measurements re-run"],
      [
        "native",
        false,
        "Cilium values only (routingMode vxlan → native, autoDirectNodeRoutes false → true, nativeRoutingCidr 10.0.0.0/16 → 10.0.0.0/22 from the previous variant)",
      ],
      [
        "native+kubeProxyReplacement=true+bpfMasquerade=true",
        true,
        "Cilium values and k3s (kubeProxyReplacement false → true, bpfMasquerade false → true from the previous variant): " +
          "kubeProxyReplacement re-runs k3s on every node with --disable-kube-proxy, then Cilium",
      ],
      [
        "native+kubeProxyReplacement=true",
        false,
        "Cilium values only (bpfMasquerade true → false from the previous variant)",
      ],
      [
        "vxlan+hubble=true",
        true,
        "Cilium values and k3s (routingMode native → vxlan, autoDirectNodeRoutes true → false, nativeRoutingCidr 10.0.0.0/22 → 10.0.0.0/16, " +
          "kubeProxyReplacement true → false from the previous variant): kubeProxyReplacement re-runs k3s on every node without --disable-kube-proxy, then Cilium",
      ],
    ],
  );
});

test("values are the program's parser's to judge, against the user's whole config: every bad variant is listed with the parser's own line, before anything runs", (t) => {
  const variants = parseVariants("vxlan,native+hostRouting=fast,geneve+kubeProxyReplacement=yes");
  const err = t.throws(() => planVariants(variants, USER));
  const problem = (raw: Record<string, string>) => {
    try {
      parseLabConfig(raw);
      return "accepted";
    } catch (e) {
      return (e as { problems: string[] }).problems.join(" / ");
    }
  };
  t.is(
    err?.message,
    "compare: the stack config would be invalid for some variants (fix the stack's config with `pulumi config set cilium-lab:<key> <value>`, " +
      "or leave the variant out of --variants):\n" +
      `- variant native+hostRouting=fast: ${problem({ hostRouting: "fast" })}\n` +
      `- variant geneve+kubeProxyReplacement=yes: ${problem({ kubeProxyReplacement: "yes" })}`,
  );
  t.is(
    problem({ hostRouting: "fast" }),
    'cilium-lab:hostRouting: is not supported (got "fast"). Accepted: legacy, bpf.',
  );
});

test("an impossible combination (the program's cross-key rules) is refused before anything runs, with every problem line the parser gives", (t) => {
  const lines = (raw: Record<string, string>): string[] => {
    try {
      parseLabConfig(raw);
      return [];
    } catch (e) {
      return [...(e as { problems: string[] }).problems];
    }
  };
  const bpfAlone = lines({ ...USER, routingMode: "native", hostRouting: "bpf" });
  t.true(bpfAlone.length > 0, "the parser refuses hostRouting bpf without kube-proxy replacement");
  t.regex(bpfAlone[0] ?? "", /^cilium-lab:hostRouting: bpf needs kubeProxyReplacement true/);
  const err = t.throws(() => planVariants(parseVariants("native,native+hostRouting=bpf"), USER));
  t.is(
    err?.message,
    "compare: the stack config would be invalid for one variant (fix the stack's config with `pulumi config set cilium-lab:<key> <value>`, " +
      "or leave the variant out of --variants):\n" +
      bpfAlone.map((p) => `- variant native+hostRouting=bpf: ${p}`).join("\n"),
  );
  t.notThrows(() =>
    planVariants(parseVariants("native+hostRouting=bpf+kubeProxyReplacement=true+bpfMasquerade=true"), USER),
  );
});

test("the terminal says, before anything runs, what each variant will change, naming k3s when kubeProxyReplacement changes", (t) => {
  t.deepEqual(planLines(planVariants(parseVariants("vxlan,vxlan+kubeProxyReplacement=true+hubble=false"), USER)), [
    "plan 1/2: vxlan will change nothing (no config change from the stack's own config): the measurements re-run",
    "plan 2/2: vxlan+kubeProxyReplacement=true+hubble=false will change Cilium values and k3s (kubeProxyReplacement false → true, " +
      "hubble true → false from the previous variant): kubeProxyReplacement re-runs k3s on every node with --disable-kube-proxy, then Cilium",
  ]);
});

test("--help documents variants: the grammar with the issue's example, the keys, what each variant changes (k3s for kubeProxyReplacement), networkMtu refused, the latency chart", (t) => {
  for (const needle of [
    "npm run compare -- --variants LIST [--stack NAME] [--destroy] [--results DIR]",
    `--variants ${THE_ISSUES}`,
    `keys: ${VARIANT_KEYS.join(", ")}`,
    "--variants LIST comma-separated variants (see above), measured in this order",
    "also re-runs k3s on every node (with or without --disable-kube-proxy)",
    "networkMtu is refused: it replaces the network and every VM",
    "results/<timestamp>/latency.svg",
    "shorthand for\n                  --variants with plain modes",
  ]) {
    t.true(HELP.includes(needle), needle);
  }
});
