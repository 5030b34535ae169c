/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), slicing by 8:
/// the header and the tables of a snapshot file carry one, so a torn or
/// edited file is refused before its tables are believed. Page data carries
/// none (it is bulk; a restore must stay O(tables), not O(memory)).
enum CRC32C {
    static let tables: [[UInt32]] = {
        var t = [[UInt32]](repeating: [UInt32](repeating: 0, count: 256), count: 8)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
            t[0][i] = c
        }
        for i in 0..<256 {
            for k in 1..<8 { t[k][i] = (t[k - 1][i] >> 8) ^ t[0][Int(t[k - 1][i] & 0xFF)] }
        }
        return t
    }()

    /// The checksum of `bytes`.
    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        tables.withUnsafeBufferPointer { tb in
            let t0 = tb[0], t1 = tb[1], t2 = tb[2], t3 = tb[3], t4 = tb[4], t5 = tb[5], t6 = tb[6], t7 = tb[7]
            var i = 0
            let n = bytes.count
            while i + 8 <= n {
                let w = bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self).littleEndian ^ UInt64(crc)
                crc = t7[Int(w & 0xFF)] ^ t6[Int((w >> 8) & 0xFF)] ^ t5[Int((w >> 16) & 0xFF)]
                    ^ t4[Int((w >> 24) & 0xFF)] ^ t3[Int((w >> 32) & 0xFF)] ^ t2[Int((w >> 40) & 0xFF)]
                    ^ t1[Int((w >> 48) & 0xFF)] ^ t0[Int(w >> 56)]
                i += 8
            }
            while i < n {
                crc = (crc >> 8) ^ t0[Int((crc ^ UInt32(bytes[i])) & 0xFF)]
                i += 1
            }
        }
        return crc ^ 0xFFFF_FFFF
    }

    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }
}
