//! The word lists and tables the seed generator draws from: places, names, shop names, and per
//! category product words with their price distributions.

/// A province with a few of its real cities, each with the first two digits of its postal codes,
/// and a weight (roughly its share of online sellers and buyers: Java first).
pub struct ProvinceSpec {
    pub province: &'static str,
    pub weight: u32,
    pub cities: &'static [(&'static str, &'static str)],
}

pub const PROVINCES: &[ProvinceSpec] = &[
    ProvinceSpec {
        province: "Aceh",
        weight: 15,
        cities: &[("Banda Aceh", "23"), ("Lhokseumawe", "24"), ("Langsa", "24")],
    },
    ProvinceSpec {
        province: "Sumatera Utara",
        weight: 45,
        cities: &[("Medan", "20"), ("Binjai", "20"), ("Pematangsiantar", "21")],
    },
    ProvinceSpec {
        province: "Sumatera Barat",
        weight: 18,
        cities: &[("Padang", "25"), ("Bukittinggi", "26"), ("Payakumbuh", "26")],
    },
    ProvinceSpec { province: "Riau", weight: 20, cities: &[("Pekanbaru", "28"), ("Dumai", "28")] },
    ProvinceSpec { province: "Jambi", weight: 10, cities: &[("Jambi", "36"), ("Sungai Penuh", "37")] },
    ProvinceSpec {
        province: "Sumatera Selatan",
        weight: 25,
        cities: &[("Palembang", "30"), ("Prabumulih", "31"), ("Lubuklinggau", "31")],
    },
    ProvinceSpec { province: "Bengkulu", weight: 6, cities: &[("Bengkulu", "38")] },
    ProvinceSpec { province: "Lampung", weight: 22, cities: &[("Bandar Lampung", "35"), ("Metro", "34")] },
    ProvinceSpec {
        province: "Kepulauan Bangka Belitung",
        weight: 4,
        cities: &[("Pangkalpinang", "33"), ("Tanjung Pandan", "33")],
    },
    ProvinceSpec {
        province: "Kepulauan Riau",
        weight: 8,
        cities: &[("Batam", "29"), ("Tanjungpinang", "29")],
    },
    ProvinceSpec {
        province: "DKI Jakarta",
        weight: 110,
        cities: &[
            ("Jakarta Selatan", "12"),
            ("Jakarta Barat", "11"),
            ("Jakarta Timur", "13"),
            ("Jakarta Utara", "14"),
            ("Jakarta Pusat", "10"),
        ],
    },
    ProvinceSpec {
        province: "Jawa Barat",
        weight: 160,
        cities: &[
            ("Bandung", "40"),
            ("Bekasi", "17"),
            ("Bogor", "16"),
            ("Depok", "16"),
            ("Cirebon", "45"),
            ("Tasikmalaya", "46"),
        ],
    },
    ProvinceSpec {
        province: "Jawa Tengah",
        weight: 110,
        cities: &[
            ("Semarang", "50"),
            ("Surakarta", "57"),
            ("Magelang", "56"),
            ("Pekalongan", "51"),
            ("Tegal", "52"),
        ],
    },
    ProvinceSpec {
        province: "DI Yogyakarta",
        weight: 25,
        cities: &[("Yogyakarta", "55"), ("Sleman", "55"), ("Bantul", "55")],
    },
    ProvinceSpec {
        province: "Jawa Timur",
        weight: 130,
        cities: &[
            ("Surabaya", "60"),
            ("Malang", "65"),
            ("Sidoarjo", "61"),
            ("Kediri", "64"),
            ("Jember", "68"),
        ],
    },
    ProvinceSpec {
        province: "Banten",
        weight: 55,
        cities: &[("Tangerang", "15"), ("Tangerang Selatan", "15"), ("Serang", "42"), ("Cilegon", "42")],
    },
    ProvinceSpec {
        province: "Bali",
        weight: 18,
        cities: &[("Denpasar", "80"), ("Badung", "80"), ("Gianyar", "80")],
    },
    ProvinceSpec {
        province: "Nusa Tenggara Barat",
        weight: 10,
        cities: &[("Mataram", "83"), ("Bima", "84")],
    },
    ProvinceSpec {
        province: "Nusa Tenggara Timur",
        weight: 8,
        cities: &[("Kupang", "85"), ("Maumere", "86")],
    },
    ProvinceSpec {
        province: "Kalimantan Barat",
        weight: 9,
        cities: &[("Pontianak", "78"), ("Singkawang", "79")],
    },
    ProvinceSpec {
        province: "Kalimantan Tengah",
        weight: 5,
        cities: &[("Palangka Raya", "73"), ("Sampit", "74")],
    },
    ProvinceSpec {
        province: "Kalimantan Selatan",
        weight: 9,
        cities: &[("Banjarmasin", "70"), ("Banjarbaru", "70")],
    },
    ProvinceSpec {
        province: "Kalimantan Timur",
        weight: 10,
        cities: &[("Samarinda", "75"), ("Balikpapan", "76"), ("Bontang", "75")],
    },
    ProvinceSpec {
        province: "Kalimantan Utara",
        weight: 2,
        cities: &[("Tarakan", "77"), ("Tanjung Selor", "77")],
    },
    ProvinceSpec { province: "Sulawesi Utara", weight: 6, cities: &[("Manado", "95"), ("Bitung", "95")] },
    ProvinceSpec { province: "Sulawesi Tengah", weight: 5, cities: &[("Palu", "94"), ("Luwuk", "94")] },
    ProvinceSpec {
        province: "Sulawesi Selatan",
        weight: 22,
        cities: &[("Makassar", "90"), ("Parepare", "91"), ("Palopo", "91")],
    },
    ProvinceSpec { province: "Sulawesi Tenggara", weight: 4, cities: &[("Kendari", "93"), ("Baubau", "93")] },
    ProvinceSpec { province: "Gorontalo", weight: 2, cities: &[("Gorontalo", "96")] },
    ProvinceSpec { province: "Sulawesi Barat", weight: 2, cities: &[("Mamuju", "91")] },
    ProvinceSpec { province: "Maluku", weight: 3, cities: &[("Ambon", "97"), ("Tual", "97")] },
    ProvinceSpec {
        province: "Maluku Utara",
        weight: 2,
        cities: &[("Ternate", "97"), ("Tidore Kepulauan", "97")],
    },
    ProvinceSpec { province: "Papua", weight: 2, cities: &[("Jayapura", "99")] },
    ProvinceSpec { province: "Papua Barat", weight: 1, cities: &[("Manokwari", "98")] },
    ProvinceSpec { province: "Papua Selatan", weight: 1, cities: &[("Merauke", "99")] },
    ProvinceSpec { province: "Papua Tengah", weight: 1, cities: &[("Nabire", "98"), ("Timika", "99")] },
    ProvinceSpec { province: "Papua Pegunungan", weight: 1, cities: &[("Wamena", "99")] },
    ProvinceSpec { province: "Papua Barat Daya", weight: 1, cities: &[("Sorong", "98")] },
];

/// Where cross-border sellers ship from; their shop's province is `Overseas`.
pub const OVERSEAS_PROVINCE: &str = "Overseas";
pub const OVERSEAS_CITIES: &[&str] =
    &["Shenzhen", "Guangzhou", "Yiwu", "Hangzhou", "Kuala Lumpur", "Bangkok"];

/// Indonesian mobile prefixes after the leading 0 (Telkomsel, Indosat, XL, Tri, Smartfren).
pub const MOBILE_PREFIXES: &[&str] = &[
    "811", "812", "813", "821", "822", "852", "853", "857", "858", "817", "818", "877", "878", "895", "896",
    "898", "881",
];

pub const SHOP_PREFIXES: &[&str] =
    &["Toko", "Rumah", "Griya", "Kedai", "Butik", "Warung", "Galeri", "Pusat", "Dunia", "Lapak"];
pub const SHOP_CORES: &[&str] = &[
    "Berkah",
    "Makmur",
    "Sejahtera",
    "Abadi",
    "Sentosa",
    "Barokah",
    "Mandiri",
    "Sumber Rejeki",
    "Cahaya",
    "Mutiara",
    "Melati",
    "Kenanga",
    "Anggrek",
    "Sari",
    "Putri",
    "Bunda",
    "Nusantara",
    "Harapan",
    "Lestari",
    "Amanah",
    "Rezeki",
    "Sinar",
    "Bintang",
    "Mentari",
    "Pelangi",
];
pub const SHOP_SUFFIXES: &[&str] =
    &["Jaya", "Official", "Store", "Shop", "Collection", "Grosir", "Indonesia", "88", "Mart", "Online"];
pub const CROSS_BORDER_WORDS: &[&str] =
    &["Global", "Star", "Mega", "Lucky", "Smart", "Golden", "Happy", "Best"];
pub const CROSS_BORDER_SUFFIXES: &[&str] = &["Trading", "Store", "Mall", "Official Store", "Direct"];

pub const FEMALE_NAMES: &[&str] = &[
    "Siti", "Dewi", "Rina", "Ayu", "Putri", "Sri", "Nur", "Indah", "Fitri", "Wulan", "Ratna", "Anisa",
    "Dian", "Maya", "Nadia", "Intan",
];
pub const MALE_NAMES: &[&str] = &[
    "Budi", "Agus", "Andi", "Rizky", "Dedi", "Eko", "Joko", "Fajar", "Hendra", "Bayu", "Arief", "Yusuf",
    "Ahmad", "Dimas", "Reza", "Wahyu",
];
pub const FAMILY_NAMES: &[&str] = &[
    "Santoso",
    "Wijaya",
    "Saputra",
    "Pratama",
    "Hidayat",
    "Kurniawan",
    "Setiawan",
    "Nugroho",
    "Siregar",
    "Nasution",
    "Lubis",
    "Simanjuntak",
    "Harahap",
    "Susanto",
    "Halim",
    "Gunawan",
    "Permana",
    "Wibowo",
    "Rahman",
    "Utami",
];
pub const NICKNAME_WORDS: &[&str] =
    &["cantik", "keren", "olshop", "gaming", "official", "real", "id", "jkt", "bdg", "sby", "cute", "store"];
pub const EMAIL_DOMAINS: &[(&str, u32)] =
    &[("gmail.com", 70), ("yahoo.co.id", 12), ("yahoo.com", 8), ("hotmail.com", 5), ("outlook.com", 5)];

pub const STREETS: &[&str] = &[
    "Jl. Sudirman",
    "Jl. Merdeka",
    "Jl. Diponegoro",
    "Jl. Gatot Subroto",
    "Jl. Ahmad Yani",
    "Jl. Pemuda",
    "Jl. Gajah Mada",
    "Jl. Hayam Wuruk",
    "Jl. Pahlawan",
    "Jl. Veteran",
    "Jl. Kartini",
    "Jl. Imam Bonjol",
    "Jl. Teuku Umar",
    "Jl. Melati",
    "Jl. Mawar",
    "Jl. Kenanga",
    "Jl. Cempaka",
    "Gg. Masjid",
    "Perum Griya Asri Blok C",
    "Komplek Permata Hijau Blok B",
];

/// A product category as the generator sees it: its weight among listings, its price
/// distribution (log-normal around a median, in rupiah), and the words of its titles and SKUs.
pub struct CategorySpec {
    pub category: &'static str,
    /// Prefix of the sellers' SKU codes.
    pub code: &'static str,
    pub weight: u32,
    /// Whole rupiah; the log-normal sampler works in floats, the price it returns is rounded to rupiah.
    pub median_price_rupiah: i64,
    pub price_sigma: f64,
    pub nouns: &'static [&'static str],
    pub qualifiers: &'static [&'static str],
    pub variants: &'static [&'static str],
}

/// Words every category's titles may end with (what sellers add for search).
pub const TITLE_TAGS: &[&str] = &[
    "",
    "",
    "",
    "Murah",
    "Original",
    "Terbaru",
    "Best Seller",
    "Premium",
    "Promo",
    "Grosir",
    "Ready Stock",
    "COD",
];

pub const CATEGORIES: &[CategorySpec] = &[
    CategorySpec {
        category: "fashion",
        code: "FSH",
        weight: 28,
        median_price_rupiah: 85_000,
        price_sigma: 0.7,
        nouns: &[
            "Kemeja",
            "Kaos",
            "Celana Jeans",
            "Gamis",
            "Hijab Segi Empat",
            "Jaket Hoodie",
            "Rok Plisket",
            "Sepatu Sneakers",
            "Sandal Jepit",
            "Tas Selempang",
            "Kemeja Batik",
            "Daster",
        ],
        qualifiers: &[
            "Pria",
            "Wanita",
            "Oversize",
            "Katun",
            "Polos",
            "Motif Batik",
            "Slim Fit",
            "Korean Style",
            "Anak",
            "Muslim",
        ],
        variants: &["S", "M", "L", "XL", "XXL", "Hitam", "Putih", "Navy", "Maroon", "Sage"],
    },
    CategorySpec {
        category: "beauty",
        code: "BTY",
        weight: 16,
        median_price_rupiah: 65_000,
        price_sigma: 0.7,
        nouns: &[
            "Serum Wajah",
            "Sunscreen",
            "Lipstik Matte",
            "Bedak Padat",
            "Toner",
            "Masker Wajah",
            "Facial Wash",
            "Body Lotion",
            "Parfum",
            "Cushion",
        ],
        qualifiers: &[
            "Vitamin C",
            "Niacinamide",
            "SPF 50",
            "Glowing",
            "Acne Care",
            "Halal",
            "BPOM",
            "Travel Size",
        ],
        variants: &["30ml", "50ml", "100ml", "Shade 01", "Shade 02", "Shade 03", "Nude", "Rose"],
    },
    CategorySpec {
        category: "food",
        code: "FOD",
        weight: 14,
        median_price_rupiah: 35_000,
        price_sigma: 0.6,
        nouns: &[
            "Keripik Singkong",
            "Kopi Arabika",
            "Sambal Bawang",
            "Rendang Kemasan",
            "Madu Hutan",
            "Teh Tubruk",
            "Kue Kering",
            "Abon Sapi",
            "Bakpia",
            "Dodol",
        ],
        qualifiers: &[
            "Pedas",
            "Original",
            "Gayo",
            "Toraja",
            "Khas Bandung",
            "Homemade",
            "Tanpa Pengawet",
            "Halal",
        ],
        variants: &["100g", "250g", "500g", "1kg", "Pedas", "Original", "Balado"],
    },
    CategorySpec {
        category: "electronics",
        code: "ELC",
        weight: 10,
        median_price_rupiah: 250_000,
        price_sigma: 1.0,
        nouns: &[
            "Earphone Bluetooth",
            "Powerbank",
            "Charger Fast Charging",
            "Kabel Data",
            "Smartwatch",
            "Speaker Portable",
            "Mouse Wireless",
            "Keyboard Mechanical",
            "Lampu LED",
            "Tripod HP",
        ],
        qualifiers: &["10000mAh", "Type C", "TWS", "Gaming", "Bergaransi", "Original", "Mini", "RGB"],
        variants: &["Hitam", "Putih", "Biru", "1m", "2m", "Standar", "Pro"],
    },
    CategorySpec {
        category: "books",
        code: "BKS",
        weight: 4,
        median_price_rupiah: 75_000,
        price_sigma: 0.5,
        nouns: &[
            "Novel",
            "Buku Resep",
            "Komik",
            "Buku Pelajaran",
            "Buku Anak",
            "Kamus",
            "Al-Quran Terjemah",
            "Buku Motivasi",
        ],
        qualifiers: &["Edisi Baru", "Bahasa Indonesia", "SD", "SMP", "SMA", "Hard Cover", "Bergambar"],
        variants: &["Soft Cover", "Hard Cover", "Paket", "Satuan"],
    },
    CategorySpec {
        category: "home",
        code: "HOM",
        weight: 10,
        median_price_rupiah: 90_000,
        price_sigma: 0.8,
        nouns: &[
            "Sprei",
            "Gorden",
            "Rak Piring",
            "Panci Set",
            "Karpet",
            "Bantal",
            "Jam Dinding",
            "Keranjang Laundry",
            "Tempat Bumbu",
            "Wajan Anti Lengket",
        ],
        qualifiers: &["Minimalis", "Motif Bunga", "Stainless", "Jumbo", "Aesthetic", "Anti Karat", "180x200"],
        variants: &["Abu", "Coklat", "Hijau", "Kecil", "Sedang", "Besar"],
    },
    CategorySpec {
        category: "health",
        code: "HLT",
        weight: 5,
        median_price_rupiah: 60_000,
        price_sigma: 0.6,
        nouns: &[
            "Masker Medis",
            "Minyak Kayu Putih",
            "Vitamin C 1000mg",
            "Madu Herbal",
            "Termometer Digital",
            "Koyo",
            "Jamu Kunyit Asam",
            "Hand Sanitizer",
        ],
        qualifiers: &["Isi 50", "Original", "BPOM", "Herbal", "Keluarga", "Anak"],
        variants: &["Satuan", "Isi 3", "Isi 10", "60ml", "120ml"],
    },
    CategorySpec {
        category: "sports",
        code: "SPT",
        weight: 5,
        median_price_rupiah: 150_000,
        price_sigma: 0.8,
        nouns: &[
            "Matras Yoga",
            "Sepatu Lari",
            "Jersey Bola",
            "Raket Badminton",
            "Dumbel",
            "Botol Minum",
            "Sarung Tangan Gym",
            "Tas Olahraga",
        ],
        qualifiers: &["Anti Slip", "Ringan", "Dri-Fit", "Pro", "Pemula", "Original"],
        variants: &["39", "40", "41", "42", "43", "1kg", "2kg", "5kg", "Merah", "Hitam"],
    },
    CategorySpec {
        category: "toys",
        code: "TOY",
        weight: 5,
        median_price_rupiah: 80_000,
        price_sigma: 0.7,
        nouns: &[
            "Lego",
            "Boneka",
            "Mobil Remote Control",
            "Puzzle Kayu",
            "Slime",
            "Mainan Edukasi",
            "Robot Transformer",
            "Rubik",
        ],
        qualifiers: &["Anak", "Edukatif", "Jumbo", "Karakter", "Set", "SNI"],
        variants: &["Merah", "Biru", "Pink", "Kecil", "Besar", "Set A", "Set B"],
    },
    CategorySpec {
        category: "automotive",
        code: "AUT",
        weight: 3,
        median_price_rupiah: 120_000,
        price_sigma: 0.9,
        nouns: &[
            "Helm",
            "Oli Mesin",
            "Sarung Jok Motor",
            "Lampu Sein",
            "Cover Motor",
            "Parfum Mobil",
            "Wiper",
            "Kampas Rem",
        ],
        qualifiers: &["SNI", "Universal", "Matic", "Vario", "Beat", "Avanza", "Original"],
        variants: &["1L", "0.8L", "M", "L", "XL", "Hitam", "Merah"],
    },
];

/// Prices that do not read as a number in either way of writing, as sellers typed them.
pub const UNPARSEABLE_PRICES: &[&str] =
    &["Rp149.000", "149rb", "149,000.00", "nego", "-", "1.49.000", "149 000"];
