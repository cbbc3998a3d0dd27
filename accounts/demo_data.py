"""Static reference data for the demo book: securities, households, profiles."""

from __future__ import annotations

from decimal import Decimal

D = Decimal

ASSET_CLASSES = [
    # code, name, annual drift, annual volatility
    ("us_large", "US Large Cap", 0.08, 0.17),
    ("us_small", "US Small & Mid Cap", 0.07, 0.22),
    ("intl_dev", "International Developed", 0.06, 0.17),
    ("em", "Emerging Markets", 0.05, 0.22),
    ("us_bond", "US Core Bonds", 0.02, 0.06),
    ("muni", "Municipal Bonds", 0.02, 0.05),
    ("reit", "Real Estate", 0.05, 0.21),
    ("cash", "Cash & Equivalents", 0.04, 0.004),
]

# symbol, name, kind, asset class, substantially-identical group ("" = the symbol alone), start price
FUNDS = [
    ("VOO", "Vanguard S&P 500 ETF", "etf", "us_large", "SP500", "480"),
    ("IVV", "iShares Core S&P 500 ETF", "etf", "us_large", "SP500", "520"),
    ("SPY", "SPDR S&P 500 ETF Trust", "etf", "us_large", "SP500", "520"),
    ("VTI", "Vanguard Total Stock Market ETF", "etf", "us_large", "TOTAL-US", "240"),
    (
        "VTSAX",
        "Vanguard Total Stock Market Index Admiral",
        "mutual_fund",
        "us_large",
        "TOTAL-US",
        "118",
    ),
    ("SCHB", "Schwab U.S. Broad Market ETF", "etf", "us_large", "", "58"),
    ("SCHX", "Schwab U.S. Large-Cap ETF", "etf", "us_large", "", "60"),
    ("ITOT", "iShares Core S&P Total U.S. Stock Market ETF", "etf", "us_large", "", "112"),
    ("VV", "Vanguard Large-Cap ETF", "etf", "us_large", "", "230"),
    ("IWB", "iShares Russell 1000 ETF", "etf", "us_large", "", "280"),
    ("VUG", "Vanguard Growth ETF", "etf", "us_large", "", "340"),
    ("VTV", "Vanguard Value ETF", "etf", "us_large", "", "158"),
    ("SCHD", "Schwab U.S. Dividend Equity ETF", "etf", "us_large", "", "78"),
    ("IJR", "iShares Core S&P Small-Cap ETF", "etf", "us_small", "", "108"),
    ("VB", "Vanguard Small-Cap ETF", "etf", "us_small", "", "215"),
    ("IWM", "iShares Russell 2000 ETF", "etf", "us_small", "", "200"),
    ("SCHA", "Schwab U.S. Small-Cap ETF", "etf", "us_small", "", "48"),
    ("VO", "Vanguard Mid-Cap ETF", "etf", "us_small", "", "240"),
    ("IJH", "iShares Core S&P Mid-Cap ETF", "etf", "us_small", "", "58"),
    ("VEA", "Vanguard FTSE Developed Markets ETF", "etf", "intl_dev", "", "48"),
    ("IEFA", "iShares Core MSCI EAFE ETF", "etf", "intl_dev", "", "72"),
    ("SCHF", "Schwab International Equity ETF", "etf", "intl_dev", "", "38"),
    ("EFA", "iShares MSCI EAFE ETF", "etf", "intl_dev", "", "78"),
    ("VXUS", "Vanguard Total International Stock ETF", "etf", "intl_dev", "TOTAL-INTL", "60"),
    (
        "VTIAX",
        "Vanguard Total International Stock Index Admiral",
        "mutual_fund",
        "intl_dev",
        "TOTAL-INTL",
        "32",
    ),
    ("VWO", "Vanguard FTSE Emerging Markets ETF", "etf", "em", "", "42"),
    ("IEMG", "iShares Core MSCI Emerging Markets ETF", "etf", "em", "", "52"),
    ("SCHE", "Schwab Emerging Markets Equity ETF", "etf", "em", "", "26"),
    ("EEM", "iShares MSCI Emerging Markets ETF", "etf", "em", "", "41"),
    ("BND", "Vanguard Total Bond Market ETF", "etf", "us_bond", "TOTAL-BOND", "72"),
    (
        "VBTLX",
        "Vanguard Total Bond Market Index Admiral",
        "mutual_fund",
        "us_bond",
        "TOTAL-BOND",
        "9.6",
    ),
    ("AGG", "iShares Core U.S. Aggregate Bond ETF", "etf", "us_bond", "", "98"),
    ("SCHZ", "Schwab U.S. Aggregate Bond ETF", "etf", "us_bond", "", "23"),
    ("IUSB", "iShares Core Total USD Bond Market ETF", "etf", "us_bond", "", "46"),
    ("VGIT", "Vanguard Intermediate-Term Treasury ETF", "etf", "us_bond", "", "58"),
    ("SCHP", "Schwab U.S. TIPS ETF", "etf", "us_bond", "", "26"),
    ("BSV", "Vanguard Short-Term Bond ETF", "etf", "us_bond", "", "77"),
    ("MUB", "iShares National Muni Bond ETF", "etf", "muni", "", "106"),
    ("VTEB", "Vanguard Tax-Exempt Bond ETF", "etf", "muni", "", "50"),
    ("TFI", "SPDR Nuveen Bloomberg Municipal Bond ETF", "etf", "muni", "", "45"),
    ("VNQ", "Vanguard Real Estate ETF", "etf", "reit", "", "86"),
    ("SCHH", "Schwab U.S. REIT ETF", "etf", "reit", "", "21"),
    ("IYR", "iShares U.S. Real Estate ETF", "etf", "reit", "", "92"),
    ("SGOV", "iShares 0-3 Month Treasury Bond ETF", "etf", "cash", "", "100"),
    ("BIL", "SPDR Bloomberg 1-3 Month T-Bill ETF", "etf", "cash", "", "91"),
]

# The direct-index sleeve: large US stocks (GOOG/GOOGL are share classes of one issuer).
STOCKS = """
AAPL:Apple MSFT:Microsoft NVDA:NVIDIA AMZN:Amazon.com GOOGL:Alphabet Class A GOOG:Alphabet Class C
META:Meta Platforms BRK.B:Berkshire Hathaway LLY:Eli Lilly AVGO:Broadcom JPM:JPMorgan Chase
TSLA:Tesla UNH:UnitedHealth XOM:Exxon Mobil V:Visa PG:Procter & Gamble MA:Mastercard JNJ:Johnson & Johnson
COST:Costco HD:Home Depot MRK:Merck ABBV:AbbVie CVX:Chevron ADBE:Adobe CRM:Salesforce PEP:PepsiCo
KO:Coca-Cola WMT:Walmart BAC:Bank of America NFLX:Netflix TMO:Thermo Fisher MCD:McDonald's CSCO:Cisco
ACN:Accenture LIN:Linde ABT:Abbott Laboratories AMD:Advanced Micro Devices ORCL:Oracle DHR:Danaher
DIS:Walt Disney WFC:Wells Fargo INTU:Intuit TXN:Texas Instruments PM:Philip Morris CAT:Caterpillar
VZ:Verizon QCOM:Qualcomm IBM:IBM AMGN:Amgen NEE:NextEra Energy GE:GE Aerospace HON:Honeywell
UNP:Union Pacific LOW:Lowe's SPGI:S&P Global PFE:Pfizer RTX:RTX AMAT:Applied Materials BKNG:Booking
T:AT&T GS:Goldman Sachs ISRG:Intuitive Surgical ELV:Elevance Health BLK:BlackRock SYK:Stryker
PLD:Prologis MDT:Medtronic SBUX:Starbucks DE:Deere TJX:TJX LMT:Lockheed Martin ADP:ADP GILD:Gilead
MMC:Marsh McLennan VRTX:Vertex CVS:CVS Health ADI:Analog Devices REGN:Regeneron C:Citigroup
MDLZ:Mondelez CB:Chubb SCHW:Charles Schwab AMT:American Tower ZTS:Zoetis CI:Cigna MO:Altria
BMY:Bristol-Myers Squibb SO:Southern Company DUK:Duke Energy BDX:Becton Dickinson PGR:Progressive
EOG:EOG Resources SLB:Schlumberger NOC:Northrop Grumman ITW:Illinois Tool Works CME:CME Group
MU:Micron BSX:Boston Scientific CL:Colgate-Palmolive EQIX:Equinix APD:Air Products AON:Aon CSX:CSX
USB:U.S. Bancorp PNC:PNC Financial ICE:Intercontinental Exchange SHW:Sherwin-Williams FDX:FedEx
MMM:3M GM:General Motors F:Ford EMR:Emerson NSC:Norfolk Southern KLAC:KLA LRCX:Lam Research
PANW:Palo Alto Networks SNPS:Synopsys CDNS:Cadence
"""

STOCK_GROUPS = {"GOOGL": "ALPHABET", "GOOG": "ALPHABET"}

HOUSEHOLD_NAMES = [
    "Abbott",
    "Brennan",
    "Castillo",
    "Delgado",
    "Eriksen",
    "Fujimoto",
    "Goldberg",
    "Hartley",
    "Iverson",
    "Jablonski",
    "Kowalczyk",
    "Lindqvist",
    "Mbeki",
    "Nakamura",
    "O'Donnell",
    "Petrakis",
    "Quintero",
    "Rasmussen",
    "Schaefer",
    "Thibodeaux",
    "Underwood",
    "Vasquez",
    "Whitfield",
    "Xiong",
    "Yamamoto",
    "Zielinski",
]
FIRST_NAMES = [
    ("Margaret", "Thomas"),
    ("Daniel", "Laura"),
    ("Sofia", "Miguel"),
    ("Elena", "Roberto"),
    ("Anders", "Ingrid"),
    ("Kenji", "Aiko"),
    ("Rachel", "David"),
    ("William", "Catherine"),
    ("Erik", "Hanna"),
    ("Piotr", "Anna"),
    ("Marek", "Zofia"),
    ("Lars", "Karin"),
    ("Thabo", "Naledi"),
    ("Hiroshi", "Yuki"),
    ("Sean", "Maeve"),
    ("Nikos", "Eleni"),
    ("Lucia", "Andres"),
    ("Mette", "Jens"),
    ("Klaus", "Greta"),
    ("Remy", "Celeste"),
    ("James", "Olivia"),
    ("Carmen", "Luis"),
    ("Henry", "Eleanor"),
    ("Wei", "Lin"),
    ("Takeshi", "Emi"),
    ("Tomasz", "Ewa"),
]

# Risk profiles: asset-class targets (fractions summing to 1).
PROFILES = {
    "conservative": {
        "us_large": D("0.20"),
        "us_small": D("0.05"),
        "intl_dev": D("0.08"),
        "em": D("0.02"),
        "us_bond": D("0.40"),
        "muni": D("0.15"),
        "reit": D("0.03"),
        "cash": D("0.07"),
    },
    "moderate": {
        "us_large": D("0.35"),
        "us_small": D("0.08"),
        "intl_dev": D("0.14"),
        "em": D("0.05"),
        "us_bond": D("0.25"),
        "muni": D("0.05"),
        "reit": D("0.04"),
        "cash": D("0.04"),
    },
    "growth": {
        "us_large": D("0.48"),
        "us_small": D("0.12"),
        "intl_dev": D("0.17"),
        "em": D("0.07"),
        "us_bond": D("0.10"),
        "reit": D("0.04"),
        "cash": D("0.02"),
    },
}

# Funds an account of each asset class may hold (first choice first).
CLASS_FUNDS = {
    "us_large": [
        "VTI",
        "VOO",
        "IVV",
        "SCHB",
        "SCHX",
        "ITOT",
        "VV",
        "VUG",
        "VTV",
        "SCHD",
        "SPY",
        "IWB",
    ],
    "us_small": ["IJR", "VB", "IWM", "SCHA", "VO", "IJH"],
    "intl_dev": ["VEA", "IEFA", "SCHF", "VXUS", "EFA"],
    "em": ["VWO", "IEMG", "SCHE", "EEM"],
    "us_bond": ["BND", "AGG", "SCHZ", "IUSB", "VGIT", "SCHP", "BSV"],
    "muni": ["MUB", "VTEB", "TFI"],
    "reit": ["VNQ", "SCHH", "IYR"],
    "cash": ["SGOV", "BIL"],
}

# (registration, tax treatment) patterns a household's accounts follow, cycled.
ACCOUNT_PATTERNS = [
    [("individual", "taxable"), ("traditional_ira", "deferred")],
    [("joint", "taxable"), ("traditional_ira", "deferred"), ("roth_ira", "exempt")],
    [("trust", "taxable"), ("joint", "taxable")],
    [("individual", "taxable"), ("roth_ira", "exempt"), ("traditional_ira", "deferred")],
    [("joint", "taxable"), ("traditional_ira", "deferred")],
]

CUSTODIANS = [
    # code, name, allows fractional shares, account-number pattern
    ("schwab", "Charles Schwab", False, r"^[0-9]{8}$"),
    ("fidelity", "Fidelity Investments", True, r"^[A-Z][0-9]{2}-[0-9]{6}$"),
    ("pershing", "Pershing", False, r"^[0-9A-Z]{3}-[0-9]{6}$"),
]


def stock_list() -> list[tuple[str, str]]:
    """(symbol, name) pairs of the direct-index sleeve, in size-rank order."""
    import re

    text = " ".join(STOCKS.split())
    return re.findall(r"([A-Z][A-Z.]*):(.+?)(?=\s+[A-Z][A-Z.]*:|$)", text)
