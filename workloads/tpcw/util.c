/* TPC-W's generators (clause 4.6) and fixed value lists (clause 4.7). */
#include <stdio.h>
#include <string.h>

#include "workloads/tpcw/tpcw.h"

const char *const tpcw_interaction_names[TPCW_INTERACTIONS] = {
    "home",          "new_products",    "best_sellers",
    "product_detail", "search_request", "search_results",
    "shopping_cart", "customer_registration", "buy_request",
    "buy_confirm",   "order_inquiry",   "order_display",
    "admin_request", "admin_confirm",
};

const char *const tpcw_mix_names[TPCW_MIXES] = {"browsing", "shopping",
                                                "ordering"};

/* Table 5.1, in tpcw_interaction order. */
const double tpcw_mix_percent[TPCW_MIXES][TPCW_INTERACTIONS] = {
    {29.00, 11.00, 11.00, 21.00, 12.00, 11.00, 2.00, 0.82, 0.75, 0.69, 0.30,
     0.25, 0.10, 0.09},
    {16.00, 5.00, 5.00, 17.00, 20.00, 17.00, 11.60, 3.00, 2.60, 1.20, 0.75,
     0.66, 0.10, 0.09},
    {9.12, 0.46, 0.46, 12.35, 14.53, 13.08, 13.53, 12.86, 12.73, 10.18, 0.25,
     0.22, 0.12, 0.11},
};

const char *const tpcw_subjects[TPCW_SUBJECTS] = {
    "ARTS",        "BIOGRAPHIES", "BUSINESS",        "CHILDREN",
    "COMPUTERS",   "COOKING",     "HEALTH",          "HISTORY",
    "HOME",        "HUMOR",       "LITERATURE",      "MYSTERY",
    "NON-FICTION", "PARENTING",   "POLITICS",        "REFERENCE",
    "RELIGION",    "ROMANCE",     "SELF-HELP",       "SCIENCE-NATURE",
    "SCIENCE-FICTION", "SPORTS",  "YOUTH",           "TRAVEL",
};

const char *const tpcw_backings[5] = {"HARDBACK", "PAPERBACK", "USED", "AUDIO",
                                      "LIMITED-EDITION"};
const char *const tpcw_ship_types[6] = {"AIR",  "UPS",     "FEDEX",
                                        "SHIP", "COURIER", "MAIL"};
const char *const tpcw_order_statuses[4] = {"PROCESSING", "SHIPPED",
                                            "PENDING", "DENIED"};
const char *const tpcw_cc_types[5] = {"VISA", "MASTERCARD", "DISCOVER",
                                      "AMEX", "DINERS"};

const struct tpcw_country tpcw_countries[TPCW_COUNTRIES] = {
    {"United States", 1, "Dollars"},
    {"United Kingdom", 0.625461, "Pounds"},
    {"Canada", 1.46712, "Dollars"},
    {"Germany", 1.86125, "Deutsche Marks"},
    {"France", 6.24238, "Francs"},
    {"Japan", 121.907, "Yen"},
    {"Netherlands", 2.09715, "Guilders"},
    {"Italy", 1842.64, "Lira"},
    {"Switzerland", 1.51645, "Francs"},
    {"Australia", 1.54208, "Dollars"},
    {"Algeria", 65.3851, "Dinars"},
    {"Argentina", 0.998, "Pesos"},
    {"Armenia", 540.92, "Dram"},
    {"Austria", 13.0949, "Schillings"},
    {"Azerbaijan", 3977, "Manat"},
    {"Bahamas", 1, "Dollars"},
    {"Bahrain", 0.3757, "Dinar"},
    {"Bangla Desh", 48.65, "Taka"},
    {"Barbados", 2, "Dollars"},
    {"Belarus", 248000, "Rouble"},
    {"Belgium", 38.3892, "Francs"},
    {"Bermuda", 1, "Dollars"},
    {"Bolivia", 5.74, "Boliviano"},
    {"Botswana", 4.7304, "Pula"},
    {"Brazil", 1.71, "Real"},
    {"Bulgaria", 1846, "Lev"},
    {"Cayman Islands", 0.8282, "Dollars"},
    {"Chad", 627.1999, "Franc"},
    {"Chile", 494.2, "Pesos"},
    {"China", 8.278, "Yuan Renmimbi"},
    {"Christmas Island", 1.5391, "Dollars"},
    {"Colombia", 1677, "Pesos"},
    {"Croatia", 7.3044, "Kuna"},
    {"Cuba", 23, "Pesos"},
    {"Cyprus", 0.543, "Pounds"},
    {"Czech Republic", 36.0127, "Koruna"},
    {"Denmark", 7.0707, "Kroner"},
    {"Dominican Republic", 15.8, "Pesos"},
    {"Eastern Caribbean", 2.7, "Dollars"},
    {"Ecuador", 9600, "Sucre"},
    {"Egypt", 3.33771, "Pounds"},
    {"El Salvador", 8.7, "Colon"},
    {"Estonia", 14.9912, "Kroon"},
    {"Ethiopia", 7.7, "Birr"},
    {"Falkland Island", 0.6255, "Pound"},
    {"Faroe Island", 7.124, "Krone"},
    {"Fiji", 1.9724, "Dollars"},
    {"Finland", 5.65822, "Markka"},
    {"Gabon", 627.1999, "Franc"},
    {"Gibraltar", 0.6255, "Pound"},
    {"Greece", 309.214, "Drachmas"},
    {"Guam", 1, "Dollars"},
    {"Hong Kong", 7.75473, "Dollars"},
    {"Hungary", 237.23, "Forint"},
    {"Iceland", 74.147, "Krona"},
    {"India", 42.75, "Rupees"},
    {"Indonesia", 8100, "Rupiah"},
    {"Iran", 3000, "Rial"},
    {"Iraq", 0.3083, "Dinar"},
    {"Ireland", 0.749481, "Punt"},
    {"Israel", 4.12, "Shekels"},
    {"Jamaica", 37.4, "Dollars"},
    {"Jordan", 0.708, "Dinar"},
    {"Kazakhstan", 150, "Tenge"},
    {"Kuwait", 0.3062, "Dinar"},
    {"Lebanon", 1502, "Pounds"},
    {"Luxembourg", 38.3892, "Francs"},
    {"Malaysia", 3.8, "Ringgit"},
    {"Mexico", 9.6287, "Pesos"},
    {"Mauritius", 25.245, "Rupees"},
    {"New Zealand", 1.87539, "Dollars"},
    {"Norway", 7.83101, "Kroner"},
    {"Pakistan", 52, "Rupees"},
    {"Philippines", 37.8501, "Pesos"},
    {"Poland", 3.9525, "Zloty"},
    {"Portugal", 190.788, "Escudo"},
    {"Romania", 15180.2, "Leu"},
    {"Russia", 24.43, "Rubles"},
    {"Saudi Arabia", 3.7501, "Riyal"},
    {"Singapore", 1.72929, "Dollars"},
    {"Slovakia", 43.9642, "Koruna"},
    {"South Africa", 6.25845, "Rand"},
    {"South Korea", 1190.15, "Won"},
    {"Spain", 158.34, "Pesetas"},
    {"Sudan", 5.282, "Dinar"},
    {"Sweden", 8.54477, "Krona"},
    {"Taiwan", 32.77, "Dollars"},
    {"Thailand", 37.1414, "Baht"},
    {"Trinidad", 6.1764, "Dollars"},
    {"Turkey", 401500, "Lira"},
    {"Venezuela", 596, "Bolivar"},
    {"Zambia", 2447.7, "Kwacha"},
};

/* 64 symbols: six random bits per character, no bias. */
static const char alphabet[65] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 .";

int tpcw_astring(struct evr_rng *r, int lo, int hi, char *out)
{
    int n = (int)evr_rng_range(r, lo, hi);
    uint64_t bits = 0;
    int left = 0;
    for (int i = 0; i < n; i++) {
        if (left == 0) {
            bits = evr_rng_next(r);
            left = 10;
        }
        out[i] = alphabet[bits & 63];
        bits >>= 6;
        left--;
    }
    out[n] = '\0';
    return n;
}

int tpcw_nstring(struct evr_rng *r, int lo, int hi, char *out)
{
    int n = (int)evr_rng_range(r, lo, hi);
    for (int i = 0; i < n; i++) {
        out[i] = (char)('0' + evr_rng_below(r, 10));
    }
    out[n] = '\0';
    return n;
}

static const char syllables[10][3] = {"BA", "OG", "AL", "RI", "RE",
                                      "SE", "AT", "UL", "IN", "NG"};

void tpcw_digsyl(uint64_t d, int n, char *out)
{
    char digits[24];
    int k = 0;
    do {
        digits[k++] = (char)(d % 10);
        d /= 10;
    } while (d > 0 && k < 20);
    int count = n > 0 ? n : k;
    char *o = out;
    for (int i = count - 1; i >= 0; i--) {
        int digit = i < k ? digits[i] : 0;
        *o++ = syllables[digit][0];
        *o++ = syllables[digit][1];
    }
    *o = '\0';
}

uint64_t tpcw_undigsyl(const char *s, size_t n)
{
    if (n == 0 || n % 2 != 0 || n > 38) {
        return 0;
    }
    uint64_t d = 0;
    for (size_t i = 0; i < n; i += 2) {
        int digit = -1;
        for (int j = 0; j < 10 && digit < 0; j++) {
            if (s[i] == syllables[j][0] && s[i + 1] == syllables[j][1]) {
                digit = j;
            }
        }
        if (digit < 0) {
            return 0;
        }
        d = d * 10 + (uint64_t)digit;
    }
    return d;
}

uint64_t tpcw_nurand(struct evr_rng *r, uint64_t a, uint64_t x, uint64_t y)
{
    uint64_t v = evr_rng_below(r, a + 1) | (x + evr_rng_below(r, y - x + 1));
    return v % (y - x + 1) + x;
}

uint64_t tpcw_nurand_a_customer(uint64_t customers)
{
    static const struct {
        uint64_t below;
        uint64_t a;
    } t[] = {{10000, 1023},       {40000, 4095},      {160000, 16383},
             {640000, 65535},     {2560000, 262143},  {10240000, 1048575},
             {40960000, 4194303}, {163840000, 16777215}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (customers < t[i].below) {
            return t[i].a;
        }
    }
    return 67108863;
}

uint64_t tpcw_nurand_a_item(uint64_t items)
{
    if (items <= 1000) {
        return 63;
    }
    if (items <= 10000) {
        return 511;
    }
    if (items <= 100000) {
        return 4095;
    }
    if (items <= 1000000) {
        return 32767;
    }
    return 524287;
}

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int64_t tpcw_days_from_civil(int y, int m, int d)
{
    return days_from_civil(y, m, d) * TPCW_DAY;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static void put_digits(char *out, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* 'YYYY-MM-DD' of day number days (years wrap to 4 digits). */
static void format_date(int64_t days, char *out)
{
    int y, m, d;
    civil_from_days(days, &y, &m, &d);
    put_digits(out, (unsigned)((y % 10000 + 10000) % 10000), 4);
    out[4] = '-';
    put_digits(out + 5, (unsigned)m, 2);
    out[7] = '-';
    put_digits(out + 8, (unsigned)d, 2);
    out[10] = '\0';
}

void tpcw_date(int64_t t, char out[11])
{
    format_date(floor_div(t, TPCW_DAY), out);
}

void tpcw_timestamp(int64_t t, char out[20])
{
    int64_t days = floor_div(t, TPCW_DAY);
    int64_t s = t - days * TPCW_DAY;
    format_date(days, out);
    out[10] = ' ';
    put_digits(out + 11, (unsigned)(s / 3600), 2);
    out[13] = ':';
    put_digits(out + 14, (unsigned)(s / 60 % 60), 2);
    out[16] = ':';
    put_digits(out + 17, (unsigned)(s % 60), 2);
    out[19] = '\0';
}

double tpcw_cents(double dollars)
{
    double c = dollars * 100.0;
    double r = (double)(int64_t)(c + (c >= 0 ? 0.5 : -0.5));
    return r / 100.0;
}
