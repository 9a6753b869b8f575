// planfence/zonefile/zone.hpp: a plan as a DNS zone, and a zone read back as planfence's endpoints.
//
// What it is: the bridge between plans and zone files. `format_zone` / `zone_records_of` turn a
// plan into a complete zone (SOA, NS and glue, the plan's records, and planfence's records beside
// them: stamps, weights) that Knot's kzonecheck accepts (tests/zonefile/ checks it);
// `decode_zone` reads parsed records back as endpoints with their stamps and weights, the
// zone's fence floor and its apply marks; `check_zone_loadable` refuses records a DNS server would refuse to load. The
// zone-file store (zonefile/store.hpp) and `planfence-ctl export` use it. It is built on the
// master-file syntax (zonefile/syntax.hpp) and on THE description of planfence's records in a
// zone (dns/zone_layout.hpp, shared with the RFC 2136 store): no owner name or stamp, floor or
// weight text is formatted or parsed here.
//
//     std::string zone = planfence::format_zone(plan, {.zone = "example.test."}).value();
//     auto contents = planfence::decode_zone(planfence::parse_zone(zone).value(), "example.test.").value();
//     contents.floor; contents.endpoints[0].stamped; contents.endpoints[0].records;  // weights restored
//
// Reading: stamps and floors are range-checked (generation 1..2^40-1, fence and floor
// 0..2^24-1) and refused with the line, owner and value otherwise. The fence floor is read from
// `_fence._planfence.<zone>` and from the legacy owner `_planfence-floor.<zone>`; the larger
// counts (docs/zone-layout.md). The apply marks `_apply._planfence.<zone>` TXT "begun=B
// applied=A" are read the same way (0..generation_max, applied not above begun, one record at
// most); they are not an endpoint. The zone-file store reads them in its home zone only.
//
// When not to use it: for zone files that are not planfence's business (parse them with
// zonefile/syntax.hpp alone), or for a zone on a live server (rfc2136/store.hpp).
//
// Cost: decode_zone and check_zone_loadable are O(records) expected time, allocating maps of
// owners; zone_records_of O(records log records) (it sorts). Nothing here does I/O.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../dns/zone_layout.hpp"
#include "../generation.hpp"
#include "../ids.hpp"
#include "../plan.hpp"
#include "../record.hpp"
#include "../result.hpp"
#include "../store.hpp"
#include "syntax.hpp"

namespace planfence {
inline namespace v1 {

/// How format_zone and the store write a zone's SOA and NS records.
struct zone_soa_options {
  /// NS names (any case; absolute, or relative to the zone). Empty: `ns1.<zone>`.
  std::vector<std::string> name_servers{};
  /// Glue: an address (A or AAAA) for each in-zone name server. Empty: `ns1.<zone>` gets
  /// 127.0.0.1 when `name_servers` is empty too (a zone kzonecheck accepts, for tests and drills:
  /// give real ones in production).
  std::vector<std::pair<std::string, std::string>> glue{};
  std::string mname{};  ///< empty: the first name server
  std::string rname{};  ///< empty: `hostmaster.<zone>`
  std::uint32_t refresh = 3600, retry = 600, expire = 604800, minimum = 60;
  std::uint32_t soa_ttl = 3600;  ///< TTL of the SOA, NS and glue records
};

/// What format_zone needs besides the plan.
struct zone_export_options {
  std::string zone{};  ///< the zone's name (required)
  zone_soa_options soa{};
  /// The SOA serial is soa_serial(plan generation, serial_base): RFC 1982 addition modulo 2^32.
  std::uint32_t serial_base = 0;
  /// The fence written into each `_planfence.<endpoint>` stamp ("gen=G fence=F").
  fence_token fence{};
  /// Endpoints outside the zone: refused (false, errc::invalid_plan) or left out (true).
  bool skip_outside = false;
};

/// The plan as a complete zone file: SOA (serial from the generation, RFC 1982), NS and glue, for
/// each endpoint inside the zone its records, the stamp `_planfence.<endpoint> 0 IN TXT "gen=G
/// fence=F"`, and one `_weight._planfence.<endpoint>` TXT "TYPE rdata weight" per weighted record
/// (DNS has no weights: servers answer every record of the set; the weights are kept beside so
/// that reading the zone back gives the plan's records exactly; dns/zone_layout.hpp). Errors: errc::invalid_name,
/// errc::capacity_exceeded (options.fence above fence_max), errc::invalid_plan (an endpoint
/// outside the zone, one with a `_planfence` label, or a zone a DNS
/// server would refuse to load: check_zone_loadable, e.g. a CNAME endpoint at the apex or at the
/// name of an in-zone name server).
[[nodiscard]] inline result<std::string> format_zone(const plan& p, const zone_export_options& options);

/// The same as records (SOA first), for callers that want to add to them before writing.
[[nodiscard]] inline result<std::vector<zone_record>> zone_records_of(const plan& p, const zone_export_options& options);

/// The rules that make DNS servers refuse to load a zone (Knot's kzonecheck refuses each one;
/// BIND's named-checkzone each but the DNAME and delegation-glue rules, which it only logs),
/// checked on records about to be written: by the
/// zone-file store before every write and by zone_records_of / format_zone. Refused:
///  - a CNAME beside any other data at its owner (RFC 1034 section 3.6.2, RFC 2181 section 10.1),
///    the SOA and NS of the apex included (so no CNAME at the apex); RRSIG and NSEC are allowed;
///  - several CNAME records at one owner;
///  - any record below a DNAME's owner (RFC 6672 section 2.4);
///  - an NS record naming a host inside the zone that has no A or AAAA record there (missing
///    glue; a host that is a CNAME has none);
///  - a TTL above 2147483647 (RFC 2181 section 8);
///  - an owner name longer than 255 octets on the wire (an endpoint within 11 characters of the
///    limit has a stamp owner `_planfence.<endpoint>` beyond it, within 19 a weight owner).
/// Not checked: what both servers load anyway (data below a delegation, MX or SRV targets that are
/// CNAMEs: warnings only), and the syntax of opaque types (kept as written). Cost: O(records)
/// expected time, allocating a hash table of owners. Errors: errc::invalid_plan naming the owner,
/// the types involved and the rule; a record read from a file gives its line.
[[nodiscard]] inline result<void> check_zone_loadable(std::span<const zone_record> records, std::string_view zone);

/// One endpoint of a zone as planfence reads it back.
struct zone_endpoint {
  std::string name;              ///< canonical, absolute
  std::vector<record> records;   ///< A, AAAA, CNAME and TXT records at the name, weights restored, sorted
  std::optional<stamp> stamped;  ///< from `_planfence.<name>`; absent if never written (version 0)
  std::uint32_t line = 0;        ///< first line that mentions it
};

/// A zone file decoded the way planfence uses it.
struct zone_contents {
  std::string zone;               ///< the SOA owner
  soa_fields soa;
  std::uint32_t soa_line = 0;
  /// The zone's fence floor: the larger of `_fence._planfence.<zone>` TXT "floor=N" and the legacy
  /// `_planfence-floor.<zone>` (dns/zone_layout.hpp); 0 if both are absent.
  fence_token floor{};
  bool legacy_floor = false;      ///< the legacy floor owner is present (the next floor write removes it)
  /// The apply marks at `_apply._planfence.<zone>` TXT "begun=B applied=A" (version 0); absent if
  /// never written. Meaningful in a store's home zone only (dns::home_zone): a zone that was the
  /// home zone before the zone set changed keeps its old marks, which nobody reads.
  std::optional<apply_marks> marks;
  std::uint32_t marks_line = 0;   ///< the line of the marks record (0: absent)
  std::vector<zone_endpoint> endpoints;  ///< sorted by name: every name with records or a stamp
};

/// Decodes parsed records of zone `zone` (canonical): exactly one SOA, owned by the zone apex and
/// first; every owner inside the zone; well-formed stamps, weights, floors and apply marks
/// (dns/zone_layout.hpp: no other name with a label beginning with `_planfence`); weights only for
/// records that exist; stamps' generations 1..generation_max, fences and the floor 0..fence_max,
/// the marks 0..generation_max with applied not above begun, at most one marks record.
/// Errors: errc::parse_error with the line (column 1) and what was expected (for a value out of
/// range: the owner, the value and the range).
[[nodiscard]] inline result<zone_contents> decode_zone(std::span<const zone_record> records, std::string_view zone);

// ---------------------------------------------------------------------------------------------
// Implementation.

namespace detail::zone {

/// SOA, NS and glue records of a new zone (serial given).
[[nodiscard]] inline result<std::vector<zone_record>> apex_records(const std::string& zone, const zone_soa_options& o,
                                                                   soa_serial_number serial) {
  std::vector<zone_record> out;
  std::string why;
  std::vector<std::string> servers;
  for (const std::string& ns : o.name_servers) {
    auto n = absolute_name(ns, zone, &why);
    if (!n) return fail(errc::invalid_name, "name server '" + ns + "': " + why);
    servers.push_back(std::move(*n));
  }
  std::vector<std::pair<std::string, std::string>> glue;
  for (const auto& [host, address] : o.glue) {
    auto n = absolute_name(host, zone, &why);
    if (!n) return fail(errc::invalid_name, "glue host '" + host + "': " + why);
    glue.emplace_back(std::move(*n), address);
  }
  if (servers.empty()) {
    servers.push_back(zone == "." ? "ns1." : "ns1." + zone);
    if (o.glue.empty()) glue.emplace_back(servers.back(), "127.0.0.1");
  }
  soa_fields soa;
  if (o.mname.empty()) {
    soa.mname = servers.front();
  } else {
    auto n = absolute_name(o.mname, zone, &why);
    if (!n) return fail(errc::invalid_name, "SOA MNAME '" + o.mname + "': " + why);
    soa.mname = std::move(*n);
  }
  if (o.rname.empty()) {
    soa.rname = zone == "." ? "hostmaster." : "hostmaster." + zone;
  } else {
    auto n = absolute_name(o.rname, zone, &why);
    if (!n) return fail(errc::invalid_name, "SOA RNAME '" + o.rname + "': " + why);
    soa.rname = std::move(*n);
  }
  soa.serial = serial;
  soa.refresh = o.refresh;
  soa.retry = o.retry;
  soa.expire = o.expire;
  soa.minimum = o.minimum;
  if (o.soa_ttl > ttl_max || o.refresh > ttl_max || o.retry > ttl_max || o.expire > ttl_max || o.minimum > ttl_max) {
    return fail(errc::invalid_ttl, "SOA times above 2147483647");
  }
  out.push_back(zone_record{zone, o.soa_ttl, "SOA", format_soa(soa), {}, 0});
  for (const std::string& ns : servers) out.push_back(zone_record{zone, o.soa_ttl, "NS", ns, {}, 0});
  for (const auto& [host, address] : glue) {
    if (!inside(host, zone)) return fail(errc::invalid_name, "glue host " + host + " is outside the zone " + zone);
    const bool v6 = address.find(':') != std::string::npos;
    auto r = make_record(v6 ? record_type::aaaa : record_type::a, o.soa_ttl, address);
    if (!r) return fail(errc::invalid_rdata, "glue for " + host + ": " + r.error().detail);
    out.push_back(zone_record{host, o.soa_ttl, v6 ? "AAAA" : "A", std::move(r->rdata), {}, 0});
  }
  return out;
}

/// The TXT data of the stamp "gen=G fence=F" (the same for every endpoint a commit writes).
[[nodiscard]] inline std::string stamp_rdata(generation gen, fence_token fence) {
  return planfence::detail::format_txt({dns::format_stamp(gen, fence)});
}

/// The zone records that make `endpoint` serve `records` with the stamp whose TXT data is
/// `stamp_text` (stamp_rdata): its served records (dns::served_records), its stamp, its weights.
/// In sort_records' order for one endpoint (records are sorted by type; `_planfence.<endpoint>`
/// comes right after the endpoint, `_weight._planfence.<endpoint>` after that), so that a batch
/// of endpoints in name order appends records that are mostly in order already.
inline void endpoint_records(std::vector<zone_record>& out, const std::string& endpoint, std::span<const record> records,
                             const std::string& stamp_text) {
  const record* cname = dns::served_cname(records);
  bool weighted = false;
  for (const record& r : records) {
    weighted = weighted || r.weight.has_value();
    if (r.type == record_type::cname && &r != cname) continue;  // dns::served_records
    zone_record& z = out.emplace_back();  // filled in place: no record built, then moved
    z.owner = endpoint;
    z.ttl = r.ttl;
    z.type = to_string(r.type);
    z.rdata = r.rdata;
  }
  zone_record& stamp_record = out.emplace_back();
  stamp_record.owner = dns::stamp_owner(endpoint);
  stamp_record.type = "TXT";
  stamp_record.rdata = stamp_text;
  if (!weighted) return;
  const std::string owner = dns::weight_owner(endpoint);
  for (const record& r : records) {
    if (r.weight) out.push_back(zone_record{owner, r.ttl, "TXT", planfence::detail::format_txt({dns::format_weight(r)}), {}, 0});
  }
}

/// endpoint_records with the stamp (gen, fence).
inline void endpoint_records(std::vector<zone_record>& out, const std::string& endpoint, std::span<const record> records,
                             generation gen, fence_token fence) {
  endpoint_records(out, endpoint, records, stamp_rdata(gen, fence));
}

/// What check_zone_loadable knows of one owner's records.
struct owner_data {
  std::size_t cnames = 0;
  const zone_record* cname = nullptr;
  const zone_record* other = nullptr;  // the first record beside which a CNAME may not stand
  bool address = false;
  bool dname = false;
};

[[nodiscard]] inline std::string where(const zone_record& r) {
  return r.line != 0 ? " (line " + std::to_string(r.line) + ")" : std::string{};
}

/// A record of a range of records or of pointers to records (a view of a zone not built yet).
[[nodiscard]] inline const zone_record& record_of(const zone_record& r) noexcept { return r; }
[[nodiscard]] inline const zone_record& record_of(const zone_record* r) noexcept { return *r; }

/// The per-record rules (owner length, TTL), and what each owner holds.
template <class Records>
[[nodiscard]] result<void> collect_owners(const Records& records, std::unordered_map<std::string_view, owner_data>& owners,
                                          bool& any_dname) {
  for (const auto& item : records) {
    const zone_record& r = record_of(item);
    // An endpoint near the name length limit gets stamp and weight owners beyond it: such a zone
    // would be refused by the servers and by parse_zone (the store could never read it again).
    if (r.owner.size() > name_text_length_max + 1) {
      return fail(errc::invalid_plan, r.owner + " " + r.type + where(r) + ": the owner is longer than " +
                                          std::to_string(name_text_length_max) +
                                          " characters (255 octets on the wire, RFC 1035 section 2.3.4); "
                                          "DNS servers refuse the zone (planfence adds _planfence. and "
                                          "_weight._planfence. to an endpoint's name for its stamp and weights)");
    }
    if (r.ttl > ttl_max) {
      return fail(errc::invalid_plan, r.owner + " " + r.type + where(r) + ": TTL " + std::to_string(r.ttl) +
                                          " is above 2147483647 (RFC 2181 section 8): DNS servers refuse the zone");
    }
    owner_data& o = owners[r.owner];
    if (r.type == "CNAME") {
      ++o.cnames;
      if (o.cname == nullptr) o.cname = &r;
    } else if (r.type != "RRSIG" && r.type != "NSEC") {
      if (o.other == nullptr) o.other = &r;
    }
    if (r.type == "A" || r.type == "AAAA") o.address = true;
    if (r.type == "DNAME") o.dname = any_dname = true;
  }
  return ok();
}

/// A record below a DNAME (RFC 6672 section 2.4): every proper ancestor of the owner in the zone.
[[nodiscard]] inline result<void> check_below_dname(const zone_record& r, std::string_view zone,
                                                    const std::unordered_map<std::string_view, owner_data>& owners) {
  std::string_view up = r.owner;
  while (up.size() > zone.size()) {
    const std::size_t dot = up.find('.');
    if (dot == std::string_view::npos || dot + 1 >= up.size()) break;
    up.remove_prefix(dot + 1);
    auto it = owners.find(up);
    if (it != owners.end() && it->second.dname) {
      return fail(errc::invalid_plan, r.owner + " " + r.type + where(r) + ": a record below the DNAME at " +
                                          std::string(up) + " (RFC 6672 section 2.4: no data below a DNAME); " +
                                          "DNS servers refuse the zone");
    }
  }
  return ok();
}

/// The rules on one record given every owner's data: CNAMEs, DNAMEs, glue.
[[nodiscard]] inline result<void> check_record(const zone_record& r, std::string_view zone,
                                               const std::unordered_map<std::string_view, owner_data>& owners, bool any_dname) {
  const owner_data& o = owners.at(r.owner);
  if (o.cnames > 1) {
    return fail(errc::invalid_plan, r.owner + ": " + std::to_string(o.cnames) +
                                        " CNAME records: a name has at most one (RFC 1034 section 3.6.2); "
                                        "DNS servers refuse the zone");
  }
  if (o.cname != nullptr && o.other != nullptr) {
    return fail(errc::invalid_plan, r.owner + ": a CNAME" + where(*o.cname) + " beside " + o.other->type + " data" +
                                        where(*o.other) +
                                        ": a CNAME cannot have other data at its name (RFC 1034 section 3.6.2, "
                                        "RFC 2181 section 10.1); DNS servers refuse the zone");
  }
  if (any_dname) {
    if (auto below = check_below_dname(r, zone, owners); !below) return below;
  }
  if (r.type == "NS" && inside(r.rdata, zone)) {
    auto it = owners.find(r.rdata);
    if (it == owners.end() || !it->second.address) {
      const bool alias = it != owners.end() && it->second.cname != nullptr;
      return fail(errc::invalid_plan, r.owner + " NS " + r.rdata + where(r) + ": the name server is inside the zone but " +
                                          (alias ? "is a CNAME, so it has" : "has") +
                                          " no A or AAAA record (glue) there; DNS servers refuse the zone");
    }
  }
  return ok();
}

}  // namespace detail::zone

namespace detail::zone {

/// check_zone_loadable on records or on pointers to them (the same rules, the same errors).
template <class Records>
[[nodiscard]] result<void> check_loadable(const Records& records, std::string_view zone) {
  std::unordered_map<std::string_view, owner_data> owners;
  owners.reserve(records.size());
  bool any_dname = false;
  if (auto collected = collect_owners(records, owners, any_dname); !collected) return collected;
  for (const auto& item : records) {
    if (auto checked = check_record(record_of(item), zone, owners, any_dname); !checked) return checked;
  }
  return ok();
}

}  // namespace detail::zone

inline result<void> check_zone_loadable(std::span<const zone_record> records, std::string_view zone) {
  return detail::zone::check_loadable(records, zone);
}

namespace detail::zone {

/// What check_zone_loadable needs to know of a zone to decide a rewrite from the records it
/// changes alone (the zone-file store's quick check, zonefile/store.hpp): whether the zone passes,
/// whether it has a DNAME anywhere, and the names its NS records point to inside the zone. Kept
/// with a zone the store wrote; worked out once, O(records), for a zone it read.
struct loadability {
  bool loadable = false;              ///< check_zone_loadable passes
  bool any_dname = false;             ///< some record is a DNAME
  std::vector<std::string> ns_hosts;  ///< the targets of the NS records that are inside the zone, sorted, distinct
};

[[nodiscard]] inline loadability loadability_of(std::span<const zone_record> records, std::string_view zone) {
  loadability out;
  out.loadable = check_loadable(records, zone).has_value();
  for (const zone_record& r : records) {
    if (r.type == "DNAME") out.any_dname = true;
    if (r.type == "NS" && inside(r.rdata, zone)) out.ns_hosts.push_back(r.rdata);
  }
  std::sort(out.ns_hosts.begin(), out.ns_hosts.end());
  out.ns_hosts.erase(std::unique(out.ns_hosts.begin(), out.ns_hosts.end()), out.ns_hosts.end());
  return out;
}

}  // namespace detail::zone

inline result<std::vector<zone_record>> zone_records_of(const plan& p, const zone_export_options& options) {
  auto zone = detail::zone::zone_name(options.zone);
  if (!zone) return unexpected_error(std::move(zone).error());
  // Stamps are read back range-checked: never write one that could not be read.
  if (options.fence > fence_max) {
    return fail(errc::capacity_exceeded, dns::fence_range_problem(std::to_string(options.fence.value()), "zone_export_options::fence"));
  }
  auto out = detail::zone::apex_records(*zone, options.soa, soa_serial(p.gen(), options.serial_base));
  if (!out) return out;
  for (const auto& e : p.endpoints()) {
    if (!detail::zone::inside(e->name, *zone)) {
      if (options.skip_outside) continue;
      return fail(errc::invalid_plan, "endpoint " + e->name + " is not inside the zone " + *zone);
    }
    if (dns::has_reserved_label(e->name)) {
      return fail(errc::invalid_plan, "endpoint " + e->name + " has a _planfence label, which planfence reserves for its own records");
    }
    detail::zone::endpoint_records(*out, e->name, e->records.records(), p.gen(), options.fence);
  }
  if (auto loadable = check_zone_loadable(*out, *zone); !loadable) {
    return fail(errc::invalid_plan, "zone " + *zone + " of generation " + std::to_string(p.gen().value()) + ": " +
                                        loadable.error().detail);
  }
  detail::zone::sort_records(*out, *zone);
  return out;
}

inline result<std::string> format_zone(const plan& p, const zone_export_options& options) {
  auto records = zone_records_of(p, options);
  if (!records) return unexpected_error(std::move(records).error());
  const std::string header = "zone " + (*records)[0].owner + " exported by planfence from generation " +
                             std::to_string(p.gen().value()) + "\nplan digest sha256:" + p.digest_hex() +
                             "\nweights (DNS has none) are kept in _weight._planfence.<endpoint> TXT records";
  std::string text = "$ORIGIN " + (*records)[0].owner + "\n";
  detail::zone::append_records(text, *records, header);
  return text;
}

namespace detail::zone {

/// decode_zone's state: the endpoints and weights seen so far, the floors, the apply marks.
struct zone_decoder {
  std::string_view zone;
  std::string floor_name;
  std::string legacy_floor_name;
  std::string marks_name;
  std::map<std::string, zone_endpoint> endpoints;
  std::map<std::string, std::vector<dns::weight_entry>> weights;
  std::optional<fence_token> floor;
  std::optional<fence_token> legacy_floor;
  std::optional<apply_marks> marks;
  std::uint32_t marks_line = 0;

  [[nodiscard]] static unexpected_error bad(const zone_record& r, std::string what) {
    return fail_at(errc::parse_error, r.line, 1, std::move(what));
  }

  /// A layout parser's refusal of the text at `r`: "a malformed ... at OWNER" or "WHOSE at OWNER
  /// "text": ... is out of range ...".
  [[nodiscard]] static unexpected_error refused(const zone_record& r, const std::string& whose, const error& e) {
    const std::string_view detail = e.detail.view();
    if (detail.substr(0, 9) == "malformed") return bad(r, "a " + std::string(detail) + " (at " + r.owner + ")");
    return bad(r, whose + " at " + r.owner + " " + std::string(detail));
  }

  zone_endpoint& endpoint_at(const std::string& name, std::uint32_t line) {
    zone_endpoint& e = endpoints[name];
    if (e.name.empty()) {
      e.name = name;
      e.line = line;
    }
    return e;
  }

  /// A record at a name without reserved labels: endpoint data, or the zone's own.
  [[nodiscard]] result<void> data(const zone_record& r) {
    auto type = parse_record_type(r.type);
    if (!type) return ok();  // NS and opaque types are not endpoint data
    if (r.owner.find('*') != std::string::npos) return ok();  // wildcards are zone data, not endpoints
    auto rec = make_record(*type, r.ttl, r.rdata);  // parse_zone validated it; hand-built records may not be
    if (!rec) return bad(r, "bad " + r.type + " data: " + rec.error().detail);
    endpoint_at(r.owner, r.line).records.push_back(std::move(*rec));
    return ok();
  }

  /// A floor record (canonical or legacy owner), range-checked.
  [[nodiscard]] result<void> floor_record(const zone_record& r, const std::string& text, std::optional<fence_token>& slot) {
    auto value = dns::parse_floor(text);
    if (!value) return refused(r, "the fence floor", value.error());
    if (slot) return bad(r, "a second fence floor at " + r.owner + ": expected one");
    slot = *value;
    return ok();
  }

  /// The apply marks record, range-checked; one at most.
  [[nodiscard]] result<void> marks_record(const zone_record& r, const std::string& text) {
    auto value = dns::parse_marks(text);
    if (!value) {
      // parse_marks says "apply marks "text": why" for a text that parses but is inconsistent.
      error e = value.error();
      constexpr std::string_view own = "apply marks ";
      if (e.detail.view().substr(0, own.size()) == own) e.detail = error_text(std::string(e.detail.view().substr(own.size())));
      return refused(r, "the apply marks", e);
    }
    if (marks) {
      return bad(r, "a second apply marks record at " + r.owner + " (the first at line " + std::to_string(marks_line) +
                        "): expected one");
    }
    marks = *value;
    marks_line = r.line;
    return ok();
  }

  /// A record whose owner has a reserved label: a stamp, a weight, a floor or the apply marks,
  /// each a TXT with one string (dns/zone_layout.hpp).
  [[nodiscard]] result<void> reserved(const zone_record& r, const std::vector<std::string_view>& l) {
    if (r.type != "TXT") return bad(r, "a " + r.type + " record under _planfence (at " + r.owner + "): expected only planfence's TXT records");
    auto text = single_txt(r.rdata);
    if (!text) return bad(r, "a _planfence TXT record with several strings (at " + r.owner + "): expected one");
    if (r.owner == floor_name) return floor_record(r, *text, floor);
    if (r.owner == legacy_floor_name) return floor_record(r, *text, legacy_floor);
    if (r.owner == marks_name) return marks_record(r, *text);
    const bool stamp = l.size() > 1 && l[0] == dns::planfence_label;
    const bool weight = l.size() > 2 && l[0] == dns::weight_label && l[1] == dns::planfence_label;
    const std::size_t prefix = stamp ? dns::planfence_label.size() + 1
                                     : dns::weight_label.size() + dns::planfence_label.size() + 2;
    const std::string rest = stamp || weight ? r.owner.substr(prefix) : std::string{};
    if (rest.empty() || dns::has_reserved_label(rest) || rest.find('*') != std::string::npos) {
      return bad(r, "unexpected name " + r.owner + ": expected _planfence.<endpoint>, _weight._planfence.<endpoint>, " +
                        floor_name + " or " + marks_name + ", for an endpoint without a _planfence label");
    }
    if (stamp) {
      auto s = dns::parse_stamp(*text);
      if (!s) return refused(r, "the stamp of " + rest, s.error());
      zone_endpoint& e = endpoint_at(rest, r.line);
      if (e.stamped) return bad(r, "a second stamp for " + rest + ": expected one");
      e.stamped = *s;
      return ok();
    }
    auto w = dns::parse_weight(*text, r.ttl, r.line);
    if (!w) return refused(r, "the weight of " + rest, w.error());
    weights[rest].push_back(std::move(*w));
    endpoint_at(rest, r.line);
    return ok();
  }

  [[nodiscard]] result<void> record(std::size_t i, const zone_record& r, zone_contents& out) {
    if (!inside(r.owner, zone)) return bad(r, "owner " + r.owner + " is outside the zone " + std::string(zone));
    if (r.type == "SOA") {
      if (i != 0) return bad(r, "a second SOA record: expected one per zone");
      if (r.owner != zone) return bad(r, "the SOA's owner " + r.owner + " is not the zone " + std::string(zone));
      auto soa = parse_soa(r.rdata);  // canonical from parse_zone; records built by hand may not be
      if (!soa) return bad(r, "bad SOA data: " + soa.error().detail);
      out.soa = std::move(*soa);
      out.soa_line = r.line;
      return ok();
    }
    const std::vector<std::string_view> l = labels(r.owner);
    if (std::none_of(l.begin(), l.end(), dns::is_reserved_label)) return data(r);
    return reserved(r, l);
  }
};

}  // namespace detail::zone

namespace detail::zone {

/// The decoder's endpoints, weights restored and records sorted, in name order.
[[nodiscard]] inline result<void> finish_endpoints(zone_decoder& d, std::vector<zone_endpoint>& out) {
  for (auto& [name, weights] : d.weights) {
    zone_endpoint& e = d.endpoints[name];
    if (auto restored = dns::restore_weights(e.records, weights, name); !restored) return unexpected_error(std::move(restored).error());
  }
  out.reserve(out.size() + d.endpoints.size());
  for (auto& [name, e] : d.endpoints) {
    std::sort(e.records.begin(), e.records.end());
    out.push_back(std::move(e));
  }
  return ok();
}

/// The endpoints decode_zone reads from `records` of zone `zone`, which hold no SOA and nothing
/// but endpoint data, stamps and weights (the records a commit writes for its endpoints): every
/// name they mention, sorted, as decode_zone gives it for a zone in which these are ALL the
/// records at those names' endpoint owners (their A, AAAA, CNAME and TXT, stamp and weights).
/// An endpoint's records do not depend on their order. Errors as decode_zone's.
[[nodiscard]] inline result<std::vector<zone_endpoint>> decode_endpoints(std::span<const zone_record> records, std::string_view zone) {
  zone_decoder d{zone, dns::floor_owner(zone), dns::legacy_floor_owner(zone), dns::marks_owner(zone), {}, {}, {}, {}, {}, 0};
  zone_contents ignored;
  for (const zone_record& r : records) {
    PLANFENCE_ASSERT(r.type != "SOA");
    if (auto done = d.record(1, r, ignored); !done) return unexpected_error(std::move(done).error());
  }
  PLANFENCE_ASSERT(!d.floor && !d.legacy_floor && !d.marks);
  std::vector<zone_endpoint> out;
  if (auto finished = finish_endpoints(d, out); !finished) return unexpected_error(std::move(finished).error());
  return out;
}


/// The endpoint decode_zone reads back from what endpoint_records writes for `name` in zone
/// `zone` (`records` with stamp `s`, version 0), said without writing and decoding those records
/// when that is certain: no weighted record (weights and several CNAMEs take the decoder's
/// restore_weights), every record as make_record gives it (canonical data: what decode_zone
/// makes of it), `name` inside the zone, without a wildcard or a reserved label. Nothing
/// otherwise (decode_endpoints then says it). The same fields as decode_zone's, line 0.
/// O(records): one make_record each, and the copy.
[[nodiscard]] inline std::optional<zone_endpoint> written_endpoint(const std::string& name, std::string_view zone,
                                                                   std::span<const record> records, stamp s) {
  if (!inside(name, zone) || name.find('*') != std::string::npos || dns::has_reserved_label(name)) return std::nullopt;
  if (!dns::stamp_range_problem(s.gen, s.fence).empty()) return std::nullopt;  // parse_stamp would refuse it
  for (const record& r : records) {
    if (r.weight) return std::nullopt;
    auto again = make_record(r.type, r.ttl, r.rdata);
    if (!again || *again != r) return std::nullopt;
  }
  PLANFENCE_ASSERT(std::is_sorted(records.begin(), records.end()));  // a record_set's
  return zone_endpoint{name, std::vector<record>(records.begin(), records.end()), stamp{s.gen, s.fence, 0}, 0};
}

}  // namespace detail::zone

inline result<zone_contents> decode_zone(std::span<const zone_record> records, std::string_view zone) {
  zone_contents out;
  out.zone = std::string(zone);
  if (records.empty() || records[0].type != "SOA") {
    return fail_at(errc::parse_error, records.empty() ? 1 : records[0].line, 1, "expected the zone's SOA record first");
  }
  detail::zone::zone_decoder d{zone, dns::floor_owner(zone), dns::legacy_floor_owner(zone), dns::marks_owner(zone),
                               {}, {}, {}, {}, {}, 0};
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (auto done = d.record(i, records[i], out); !done) return unexpected_error(std::move(done).error());
  }
  if (auto finished = detail::zone::finish_endpoints(d, out.endpoints); !finished) return unexpected_error(std::move(finished).error());
  out.floor = dns::effective_floor(d.floor, d.legacy_floor);
  out.legacy_floor = d.legacy_floor.has_value();
  out.marks = d.marks;
  out.marks_line = d.marks_line;
  return out;
}

}  // namespace v1
}  // namespace planfence
