"""Curated word lists for the embedded extractor and the shared post-check.

Small on purpose: the lexicon names the entities a Korean tech/news transcript
mentions most, and the suffix rules below catch the long tail. Anything neither
recognises is filed under 기타, which is honest; a wrong specific category is
worse than a vague one.

Decisions worth knowing:
- Universities and other institutions people go to (홍익대, 서울대학교, KAIST) are
  장소. The original system filed institutions under 장소 or 회사 without a rule;
  a university is not a company, and treating "-대학교/-대" like "-역/-시" keeps
  the suffix rules simple and consistent.
- GPUs and accelerators (GPU, H100, A100) are 장비 (equipment), not 기술: they are
  things that are bought and racked. CUDA, 딥러닝 and the like are 기술.
- LLM and speech model families (Qwen, Llama, GPT, Whisper) are 기술; consumer
  product lines (iPhone, 갤럭시) are 제품; apps and platforms people use
  (유튜브, 카카오톡, ChatGPT) are 서비스.

Keys are compared case-folded with whitespace removed (see ``lexicon_key``).
"""

from __future__ import annotations

import re

PERSON = "인물"
PLACE = "장소"
COMPANY = "회사"
TECHNOLOGY = "기술"
PRODUCT = "제품"
EQUIPMENT = "장비"
SERVICE = "서비스"
OTHER = "기타"


def lexicon_key(word: str) -> str:
    return "".join(word.split()).casefold()


def _words(text: str) -> frozenset[str]:
    # Word lists are kept as prose blocks: far easier to read and extend in
    # Hangul than thousands of quoted literals.
    return frozenset(text.split())


# Titles and roles: the word itself is a person reference, and a proper noun
# right before it ("김철수 교수") is taken to be a person's name. Titles that are
# as often ordinary words (검사 "inspection", 의사 "intention", 이사 "moving house",
# 대사 "lines", 과장 "exaggeration") are left out.
TITLE_WORDS: frozenset[str] = _words(
    """
    교수 장관 대통령 대표 의원 회장 사장 부사장 총리 박사 기자 감독 선수 작가 위원장 총장
    부총리 차관 국회의원 대변인 이사장 전무 상무 부장 팀장 원장 청장 변호사 판사 간호사
    교사 선생 선생님 연구원 대표이사 창업자 국장 실장 군수 구청장 도지사 장군 목사 신부
    스님 회장님 사장님 대통령님
    """
)

EN_TITLE_WORDS: frozenset[str] = _words(
    """
    president professor dr mr mrs ms miss sir senator minister governor mayor ceo cto cfo
    chairman director secretary general captain king queen prince princess pope judge
    """
)

_COMPANIES = """
삼성 삼성전자 삼성sdi 삼성바이오로직스 엘지 lg lg전자 엘지전자 lg화학 sk sk하이닉스 하이닉스
sk텔레콤 kt 네이버 카카오 현대자동차 현대차 기아 포스코 쿠팡 한화 롯데 신세계 cj 두산
셀트리온 크래프톤 넥슨 엔씨소프트 넷마블 하이브 구글 google 알파벳 애플 apple 엔비디아 nvidia
마이크로소프트 microsoft 오픈ai openai 메타 meta 아마존 amazon 테슬라 tesla 인텔 intel amd
에이엠디 tsmc 퀄컴 qualcomm 소니 sony ibm 알리바바 alibaba 바이두 baidu 화웨이 huawei 샤오미
xiaomi 텐센트 tencent 앤트로픽 anthropic 딥마인드 deepmind 허깅페이스 huggingface 오라클
oracle 시스코 cisco 어도비 adobe 삼성물산 현대건설 대한항공 아시아나 업스테이지 리벨리온
퓨리오사 퓨리오사ai 뤼튼
"""

_PLACES = """
서울 부산 대구 인천 광주 대전 울산 세종 제주 제주도 경기 경기도 강원도 충청도 전라도 경상도
강남 판교 여의도 홍대 명동 종로 한국 대한민국 북한 미국 중국 일본 영국 프랑스 독일 러시아
캐나다 호주 인도 베트남 대만 싱가포르 유럽 아시아 아프리카 뉴욕 도쿄 베이징 상하이 런던 파리
실리콘밸리 워싱턴 newyork korea seoul busan usa america japan china europe london paris tokyo
홍익대 서울대 연세대 고려대 카이스트 kaist 포스텍 postech 성균관대 한양대 이화여대 서강대
백화점 영화관 극장 테마파크 놀이공원 아파트 공항 학교 대학교 대학 병원 공원 호텔 식당 카페
박물관 미술관 도서관 경기장 체육관 사무실 연구소 공장 매장 마트 터미널 항구 교회 성당
청와대 국회 광장 캠퍼스 데이터센터 은행 편의점
"""

_TECHNOLOGIES = """
인공지능 ai 딥러닝 머신러닝 기계학습 음성인식 자연어처리 nlp 클라우드 5g 6g lte 블록체인
메타버스 자율주행 반도체 빅데이터 사물인터넷 iot llm 거대언어모델 언어모델 트랜스포머
양자컴퓨팅 양자컴퓨터 가상현실 vr 증강현실 ar 알고리즘 신경망 생성형ai 강화학습 컴퓨터비전
cuda 파이썬 python pytorch 파이토치 tensorflow 텐서플로 쿠버네티스 kubernetes 도커 docker 리눅스
linux vllm whisper 위스퍼 qwen llama gpt bert gemma mistral claude 암호화 보안 데이터베이스
음성합성 tts stt 로보틱스 로봇공학 핀테크 바이오 소프트웨어 오픈소스
"""

_PRODUCTS = """
아이폰 iphone 갤럭시 galaxy 아이패드 ipad 맥북 macbook 에어팟 airpods 애플워치 갤럭시탭
픽셀 pixel 윈도우 windows 안드로이드 android ios 맥os macos 스마트폰 노트북 태블릿 냉장고
세탁기 텔레비전 tv 자동차 전기차 플레이스테이션 playstation 엑스박스 xbox 닌텐도 스위치
"""

_EQUIPMENT = """
gpu cpu tpu npu h100 h200 a100 b200 v100 서버 마이크 마이크로폰 카메라 스피커 모니터 라우터
드론 센서 프린터 키보드 헤드셋 이어폰 레이더 스캐너 그래픽카드 가속기 슈퍼컴퓨터 로봇
장비 배터리 칩 웨이퍼 노광기 server microphone mic camera speaker monitor router drone sensor
printer keyboard headset battery chip accelerator supercomputer robot
"""

_SERVICES = """
유튜브 youtube 넷플릭스 netflix 카카오톡 카톡 카카오택시 카카오페이 카카오맵 네이버페이
네이버지도 인스타그램 instagram 페이스북 facebook 트위터 twitter 틱톡 tiktok 왓츠앱 whatsapp
챗gpt chatgpt 지메일 gmail 배달의민족 배민 토스 쿠팡이츠 쿠팡플레이 스포티파이 spotify
멜론 디즈니플러스 티빙 웨이브 줌 zoom 슬랙 slack 라인 제미나이 gemini 코파일럿 copilot
구글지도 구글맵 클로바 파파고 papago 위키피디아 wikipedia
"""


def _table() -> dict[str, str]:
    table: dict[str, str] = {}
    for category, words in (
        (PLACE, _PLACES),
        (COMPANY, _COMPANIES),
        (TECHNOLOGY, _TECHNOLOGIES),
        (PRODUCT, _PRODUCTS),
        (EQUIPMENT, _EQUIPMENT),
        (SERVICE, _SERVICES),
    ):
        for word in _words(words):
            table[lexicon_key(word)] = category
    for word in TITLE_WORDS | EN_TITLE_WORDS:
        table[lexicon_key(word)] = PERSON
    return table


LEXICON: dict[str, str] = _table()

# Suffix rules, longest first within each group. Place suffixes that are also
# ordinary endings (시 "time", 도 "also", 구 "phrase", 대 "generation") are applied
# to proper nouns only; see ``suffix_category``.
_PROPER_PLACE_SUFFIXES = (
    "대학교",
    "대학원",
    "대학",
    "대",
    "역",
    "시",
    "도",
    "구",
    "군",
    "읍",
    "섬",
)
# Place suffixes that also end Korean given names (박영구, 김민도): a title after
# the word ("박영구 교수") outweighs them.
NAME_LIKE_PLACE_SUFFIXES = ("구", "도", "시", "군")
_ANY_PLACE_SUFFIXES = (
    "대학교",
    "백화점",
    "영화관",
    "박물관",
    "미술관",
    "도서관",
    "체육관",
    "경기장",
    "공항",
    "공원",
    "병원",
    "호텔",
    "테마파크",
    "캠퍼스",
    "연구소",
    "터미널",
    "기차역",
)
# Company endings: the first group is unambiguous; the second also ends ordinary
# compounds (전기자동차, 그래픽카드, 이동통신) and is applied to proper nouns only.
_COMPANY_SUFFIXES = ("전자", "그룹", "은행", "증권", "홀딩스", "엔터테인먼트", "바이오로직스")
_PROPER_COMPANY_SUFFIXES = (
    "자동차",
    "카드",
    "통신",
    "화학",
    "생명",
    "화재",
    "항공",
    "건설",
    "제약",
    "물산",
    "상사",
    "중공업",
    "반도체",
    "텔레콤",
    "하이닉스",
)
_TECHNOLOGY_SUFFIXES = ("인공지능", "기술", "공학", "학습", "인식", "처리", "알고리즘")
_SERVICE_SUFFIXES = ("서비스", "플랫폼", "앱")
_EQUIPMENT_SUFFIXES = ("서버", "카메라", "마이크", "센서", "장비", "gpu")

_EN_PLACE_WORDS = _words(
    "university college station airport city street avenue park museum hospital hotel"
)
_EN_COMPANY_WORDS = _words(
    "inc inc. corp corp. corporation electronics group bank ltd ltd. llc company motors"
)

# Latin model names: a family prefix plus digits ("H100", "RTX 4090", "Qwen2.5").
_EQUIPMENT_FAMILIES = (
    "rtx",
    "gtx",
    "dgx",
    "hgx",
    "tpu",
    "npu",
    "gpu",
    "cpu",
    "mi",
    "h",
    "a",
    "b",
    "v",
    "l",
)
_MODEL_NAME = re.compile(r"^([a-z]+)[\s-]?\d")


def suffix_category(word: str, *, proper: bool) -> str | None:
    """Category from the shape of a Korean or English term, or None."""
    key = lexicon_key(word)
    for title in TITLE_WORDS:
        # "김장관", "정교수": a name or prefix glued to a title is a person.
        if len(key) > len(title) and key.endswith(title) and len(title) >= 2:
            return PERSON
    for suffix in _COMPANY_SUFFIXES + (_PROPER_COMPANY_SUFFIXES if proper else ()):
        if len(key) > len(suffix) and key.endswith(suffix):
            return COMPANY
    if "㈜" in word or "(주)" in word:
        return COMPANY
    for suffix in _ANY_PLACE_SUFFIXES:
        if len(key) > len(suffix) and key.endswith(suffix):
            return PLACE
    if proper:
        for suffix in _PROPER_PLACE_SUFFIXES:
            # Two syllables before the suffix at least: "부산역", "홍익대", not "시대".
            if len(key) >= len(suffix) + 2 and key.endswith(suffix):
                return PLACE
    for suffix in _TECHNOLOGY_SUFFIXES:
        if len(key) > len(suffix) + 1 and key.endswith(suffix):
            return TECHNOLOGY
    for suffix in _SERVICE_SUFFIXES:
        if len(key) > len(suffix) + 1 and key.endswith(suffix):
            return SERVICE
    for suffix in _EQUIPMENT_SUFFIXES:
        if len(key) > len(suffix) and key.endswith(suffix):
            return EQUIPMENT
    words = word.casefold().split()
    if len(words) > 1:
        if words[0].rstrip(".") in EN_TITLE_WORDS:
            return PERSON
        if any(w in _EN_COMPANY_WORDS for w in words):  # "Samsung Electronics", "Bank of America"
            return COMPANY
        if any(w in _EN_PLACE_WORDS for w in words):  # "Seoul Station", "University of Seoul"
            return PLACE
        # "갤럭시 S24", "RTX 4090": a known product or equipment line plus a model code.
        head = LEXICON.get(words[0])
        if head in (PRODUCT, EQUIPMENT) and any(c.isdigit() for c in words[-1]):
            return head
    return None


def model_name_category(word: str) -> str | None:
    """Latin letters+digits model names: known family, else 장비 or 제품 by prefix."""
    key = word.casefold()
    if not any(c.isdigit() for c in key) or not any("a" <= c <= "z" for c in key):
        return None
    match = _MODEL_NAME.match(key)
    family = match.group(1) if match else ""
    if family and family in LEXICON:
        return LEXICON[family]
    if family in _EQUIPMENT_FAMILIES:
        return EQUIPMENT
    return PRODUCT


def lookup(word: str) -> str | None:
    """Lexicon category of a whole term, or None."""
    return LEXICON.get(lexicon_key(word))


# Generic nouns that are never keywords: bound nouns, time words, discourse
# fillers and abstract words that appear in almost every sentence.
KO_STOP_NOUNS: frozenset[str] = _words(
    """
    것 수 등 때 중 년 월 일 분 점 측 전 후 거 데 뿐 때문 곳 쪽 번 개 명 원 시간 초
    경우 정도 이번 지난해 올해 내년 작년 지난달 이달 다음달 오늘 어제 내일 지금 현재 당시
    이후 이전 이상 이하 가운데 사이 동안 이날 그날 최근 앞 뒤 위 아래 안 밖 속 옆 간 내 외
    관련 내용 상황 문제 부분 방법 이유 결과 과정 사실 생각 말씀 얘기 자신 모두 하나 둘 다음
    처음 마지막 여러 각각 자체 대부분 일부 전체 누구 무엇 어디 언제 여기 거기 저기 우리 저희
    이것 그것 저것 이거 그거 저거 당신 본인 정말 진짜 그냥 계속 약간 조금 느낌 기분 방침 입장
    상태 측면 차원 대상 경우 모습 가지 그동안 마찬가지 덕분 탓 만큼 대로 채 통해 위해 대해
    """
)

EN_FUNCTION_WORDS: frozenset[str] = _words(
    """
    a about above after again against all also am an and any are aren't as at be because been
    before being below between both but by can cannot could couldn't did didn't do does doesn't
    doing don't down during each even ever every few for from further had hadn't has hasn't have
    haven't having he he'd he'll he's her here here's hers herself him himself his how how's i
    i'd i'll i'm i've if in into is isn't it it's its itself just let's like may me might more
    most much must my myself no nor not now of off on once only or other ought our ours
    ourselves out over own same shall she she'd she'll she's should shouldn't so some such than
    that that's the their theirs them themselves then there there's these they they'd they'll
    they're they've this those though through thus to too under until up upon us very was
    wasn't we we'd we'll we're we've were weren't what what's when when's where where's which
    while who who's whom why why's will with within without won't would wouldn't yes yet you
    you'd you'll you're you've your yours yourself yourselves okay ok oh uh um hmm yeah hey
    well really also actually maybe perhaps please thank thanks one two three four five six
    seven eight nine ten first second third hundred thousand million billion
    """
)

# Common verbs, adjectives and vague nouns: stop words too, but when capitalised
# before another capitalised word they can start a name ("New York", "Great Britain").
EN_COMMON_WORDS: frozenset[str] = _words(
    """
    ask asked asks say said says go goes went gone get gets got make makes made know knew known
    think thought see saw seen come came take took taken want wanted look looked use used find
    found give gave given tell told work call try tried feel felt leave left put mean meant keep
    kept let begin began seem seemed help talk turn start show hear heard play run move live
    believe hold bring brought happen write wrote provide sit sat stand stood lose lost pay paid
    meet met include continue set learn change lead understand watch follow stop create speak
    spoke read allow add spend spent grow grew open walk win won offer remember love consider
    appear buy bought wait serve die send sent expect build built stay fall fell cut reach kill
    remain hope hoped need needed done going gonna wanna got
    good new old great little big small large long short high low right wrong different next
    early late young important public bad able sure certain whole real best better worst worse
    many several last full true false free hard easy clear simple possible likely fellow
    thick thin fat yellow red blue green black white brown grey gray dark bright
    something anything nothing everything someone anyone everyone somebody anybody nobody
    thing things way ways time times lot lots kind sort
    """
)
EN_STOP_WORDS: frozenset[str] = EN_FUNCTION_WORDS | EN_COMMON_WORDS

# "-ing" words that are usually nouns; other "-ing" words are verb forms.
EN_ING_NOUNS: frozenset[str] = _words(
    """
    morning evening building meeting training wedding ceiling clothing painting king ring
    thing spring string wing feeling beginning setting ending computing learning engineering
    marketing programming funding housing parking shipping hearing warning opening
    """
)

# Nouns that merely look like "-ly" adverbs or "-ed" verb forms.
EN_LY_ED_NOUNS: frozenset[str] = _words(
    """
    family belly jelly supply reply ally rally assembly anomaly monopoly butterfly july italy
    lily bully holly italy sally emily kelly molly polly speed breed greed creed steed tweed
    hundred
    """
)
