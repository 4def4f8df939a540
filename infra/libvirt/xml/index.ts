/** libvirt XML: what we render (render.ts, with the ownership stamp) and what we read back (parse.ts). */
export {
  OWNER_NS,
  OWNER_PROJECT,
  dhcpHostXml,
  domainXml,
  networkXml,
  type DhcpHost,
  type DomainSpec,
  type NetworkSpec,
  type Owner,
} from "./render";
export {
  netmaskToPrefix,
  parseDomainXml,
  parseLeases,
  parseNetworkXml,
  parsePoolTargetPath,
  type Lease,
  type ParsedDisk,
  type ParsedDomain,
  type ParsedInterface,
  type ParsedNetwork,
} from "./parse";
