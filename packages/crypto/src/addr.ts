/**
 * Strict syntax of the TCP multiaddrs bftrc replicas listen on and are dialled at:
 * `/ip4/<a.b.c.d>/tcp/<port>`, `/ip6/<address>/tcp/<port>`, `/dns4|dns6|dns/<host name>/tcp/<port>`.
 * Pure string checks (no I/O, no multiaddr library): the membership refuses anything else, so the
 * transport never meets an address that libp2p cannot parse or TCP cannot use.
 */

export type TcpHostKind = 'ip4' | 'ip6' | 'dns' | 'dns4' | 'dns6'

export interface TcpMultiaddr {
  readonly kind: TcpHostKind
  /** As written: a dotted quad, an IPv6 address (any valid spelling) or a host name. */
  readonly host: string
  readonly port: number
}

export interface TcpMultiaddrOptions {
  /** Accept port 0 ("any free port": an address to listen on, never one to dial). Default false. */
  readonly anyPort?: boolean
}

export type TcpMultiaddrResult = { readonly addr: TcpMultiaddr } | { readonly error: string }

export const TCP_MULTIADDR_FORMS = '/ip4/<a.b.c.d>/tcp/<port>, /ip6/<address>/tcp/<port> or /dns4|dns6|dns/<host name>/tcp/<port>'

const KINDS: ReadonlyMap<string, TcpHostKind> = new Map([
  ['ip4', 'ip4'],
  ['ip6', 'ip6'],
  ['dns', 'dns'],
  ['dns4', 'dns4'],
  ['dns6', 'dns6'],
])

const OCTET = '(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])'
const IPV4 = new RegExp(`^${OCTET}(?:\\.${OCTET}){3}$`)
const HEX_GROUP = /^[0-9A-Fa-f]{1,4}$/
const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/
const DECIMAL_PORT = /^(?:0|[1-9][0-9]{0,4})$/

/** A dotted quad, each part 0-255 in decimal without leading zeros. */
export function isIpv4(text: string): boolean {
  return IPV4.test(text)
}

/** The 16 bytes of an IPv6 address in RFC 4291 text form (one `::` at most, a dotted quad only last, no zone); undefined otherwise. */
export function ipv6Bytes(text: string): Uint8Array | undefined {
  if (text.length > 45) return undefined // ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255
  const groups = (part: string, dottedLast: boolean): number[] | undefined => {
    if (part === '') return []
    const out: number[] = []
    const pieces = part.split(':')
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i] as string
      if (dottedLast && i === pieces.length - 1 && piece.includes('.')) {
        if (!isIpv4(piece)) return undefined
        const [a, b, c, d] = piece.split('.').map(Number) as [number, number, number, number]
        out.push(a * 256 + b, c * 256 + d)
      } else if (HEX_GROUP.test(piece)) {
        out.push(Number.parseInt(piece, 16))
      } else {
        return undefined
      }
    }
    return out
  }
  const gap = text.indexOf('::')
  let words: number[]
  if (gap === -1) {
    const all = groups(text, true)
    if (all === undefined || all.length !== 8) return undefined
    words = all
  } else {
    if (text.indexOf('::', gap + 1) !== -1) return undefined // a second "::" (or ":::")
    const left = groups(text.slice(0, gap), false)
    const right = groups(text.slice(gap + 2), true)
    if (left === undefined || right === undefined || left.length + right.length > 7) return undefined
    words = [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right]
  }
  const bytes = new Uint8Array(16)
  words.forEach((w, i) => {
    bytes[2 * i] = w >> 8
    bytes[2 * i + 1] = w & 0xff
  })
  return bytes
}

/** A host name per RFC 1123: dot-separated labels of letters, digits and inner hyphens, 1-63 each, 253 in all, no final dot. */
export function isHostname(text: string): boolean {
  return text.length >= 1 && text.length <= 253 && text.split('.').every((label) => LABEL.test(label))
}

function hostError(kind: TcpHostKind, host: string): string | undefined {
  const shown = JSON.stringify(host)
  if (kind === 'ip4') return isIpv4(host) ? undefined : `${shown} is not an IPv4 address (four parts 0-255, no leading zeros)`
  if (kind === 'ip6') return ipv6Bytes(host) === undefined ? `${shown} is not an IPv6 address (no zone, one "::" at most)` : undefined
  return isHostname(host) ? undefined : `${shown} is not a host name (labels of letters, digits and inner hyphens, 1-63 each, no final dot)`
}

/**
 * Parses one of the accepted forms, or says why `text` is not one: an unsupported protocol, a
 * bad host, a port outside 1-65535 (0-65535 with `anyPort`) or not in plain decimal, empty
 * components (a doubled, leading or trailing `/`), or anything after the port — including
 * `/p2p/<peer id>`, which the transport derives from the member's key and adds itself.
 */
export function parseTcpMultiaddr(text: string, options: TcpMultiaddrOptions = {}): TcpMultiaddrResult {
  if (typeof text !== 'string' || !text.startsWith('/')) return { error: `expected ${TCP_MULTIADDR_FORMS}` }
  const parts = text.slice(1).split('/')
  if (parts.includes('')) return { error: 'empty component (a doubled, leading or trailing "/")' }
  const [proto, host, tcp, port, ...rest] = parts as [string, ...Array<string | undefined>]
  const kind = KINDS.get(proto)
  if (kind === undefined) return { error: `unsupported protocol ${JSON.stringify(proto)}: expected ${TCP_MULTIADDR_FORMS}` }
  if (host === undefined) return { error: `/${proto} needs an address: expected ${TCP_MULTIADDR_FORMS}` }
  const bad = hostError(kind, host)
  if (bad !== undefined) return { error: bad }
  if (tcp !== 'tcp' || port === undefined) return { error: `expected /tcp/<port> after the host (${TCP_MULTIADDR_FORMS})` }
  const min = options.anyPort === true ? 0 : 1
  const n = DECIMAL_PORT.test(port) ? Number(port) : Number.NaN
  if (!(n >= min && n <= 65535)) return { error: `port ${JSON.stringify(port)}: expected ${min}-65535 in decimal, no leading zeros` }
  if (rest.length > 0) {
    if (rest[0] === 'p2p') return { error: 'no /p2p/<peer id> here: the transport adds the peer id derived from the public key' }
    return { error: `nothing may follow /tcp/<port> (found /${rest.join('/')})` }
  }
  return { addr: { kind, host, port: n } }
}
