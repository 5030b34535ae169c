import Testing
@testable import Vmem

@Suite("SIZE parser")
struct SizeParserTests {
    @Test("accepted forms", arguments: [
        ("4096", UInt64(4096)),
        ("0x1000", 4096),
        ("0X1000", 4096),
        ("0xfffffe0000000000", 0xFFFF_FE00_0000_0000),
        ("512M", 512 << 20),
        ("512m", 512 << 20),
        ("512MB", 512 << 20),
        ("512MiB", 512 << 20),
        ("512mib", 512 << 20),
        ("12.5G", 12 << 30 | 1 << 29),
        ("2T", 2 << 40),
        ("1P", 1 << 50),
        ("4K", 4096),
        ("1.5K", 1536),
        ("0.5M", 512 << 10),
        ("4096B", 4096),
        ("0x10M", 16 << 20),
        ("  64G \n", 64 << 30),
        ("+1G", 1 << 30),
        ("0", 0),
        ("15.75T", 15 << 40 | 3 << 38),
        ("18446744073709551615", UInt64.max),
        ("0xFFFFFFFFFFFFFFFF", UInt64.max),
        ("15.99999999999999999999P", nil as UInt64?),
    ] as [(String, UInt64?)])
    func accepted(text: String, expected: UInt64?) throws {
        if let expected {
            #expect(try SizeParser.parse(text) == expected)
        } else {
            #expect(throws: SizeParseError.self) { try SizeParser.parse(text) }
        }
    }

    @Test("errors name the input")
    func errors() {
        #expect(throws: SizeParseError.empty) { try SizeParser.parse("") }
        #expect(throws: SizeParseError.empty) { try SizeParser.parse("   ") }
        #expect(throws: SizeParseError.negative("-1")) { try SizeParser.parse("-1") }
        #expect(throws: SizeParseError.negative("-4G")) { try SizeParser.parse(" -4G") }
        #expect(throws: SizeParseError.malformed("abc")) { try SizeParser.parse("abc") }
        #expect(throws: SizeParseError.malformed("0x")) { try SizeParser.parse("0x") }
        #expect(throws: SizeParseError.malformed("1.2.3")) { try SizeParser.parse("1.2.3") }
        #expect(throws: SizeParseError.malformed("1 G")) { try SizeParser.parse("1 G") }
        #expect(throws: SizeParseError.malformed(".")) { try SizeParser.parse(".") }
        #expect(throws: SizeParseError.unknownUnit(text: "4X", unit: "X")) { try SizeParser.parse("4X") }
        #expect(throws: SizeParseError.unknownUnit(text: "4GX", unit: "GX")) { try SizeParser.parse("4GX") }
        #expect(throws: SizeParseError.unknownUnit(text: "1e3", unit: "e3")) { try SizeParser.parse("1e3") }
        #expect(throws: SizeParseError.overflow("18446744073709551616")) {
            try SizeParser.parse("18446744073709551616")
        }
        #expect(throws: SizeParseError.overflow("0x10000000000000000")) {
            try SizeParser.parse("0x10000000000000000")
        }
        #expect(throws: SizeParseError.overflow("16384P")) { try SizeParser.parse("16384P") }
        #expect(throws: SizeParseError.fractionalBytes("1.5")) { try SizeParser.parse("1.5") }
        #expect(throws: SizeParseError.fractionalBytes("0.3K")) { try SizeParser.parse("0.3K") }
    }

    @Test("error descriptions carry the text")
    func descriptions() {
        #expect(SizeParseError.negative("-1").description.contains("'-1'"))
        #expect(SizeParseError.unknownUnit(text: "4X", unit: "X").description.contains("'X'"))
        #expect(SizeParseError.overflow("99999P").description.contains("64 bits"))
    }
}
